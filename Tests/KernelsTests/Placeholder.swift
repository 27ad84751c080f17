import Testing

@Test func placeholder_KernelsTests() { #expect(Bool(true)) }
