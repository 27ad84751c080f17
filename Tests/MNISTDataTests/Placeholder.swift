import Testing

@Test func placeholder_MNISTDataTests() { #expect(Bool(true)) }
