import Testing

@Test func placeholder_AutogradTests() { #expect(Bool(true)) }
