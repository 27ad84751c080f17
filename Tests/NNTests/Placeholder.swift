import Testing

@Test func placeholder_NNTests() { #expect(Bool(true)) }
