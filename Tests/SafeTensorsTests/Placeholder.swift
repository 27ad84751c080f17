import Testing

@Test func placeholder_SafeTensorsTests() { #expect(Bool(true)) }
