import Testing

@Test func placeholder_PlotTests() { #expect(Bool(true)) }
