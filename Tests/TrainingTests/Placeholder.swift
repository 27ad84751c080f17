import Testing

@Test func placeholder_TrainingTests() { #expect(Bool(true)) }
