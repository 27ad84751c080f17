import Testing

@Test func placeholder_OptimTests() { #expect(Bool(true)) }
