import Foundation
import Optim
import Testing
import TestSupport

/// `OneCycleLR` against torch_layers.json: the learning rate and momentum (SGD) or beta1
/// (Adam) before each optimizer step, element by element (rtol 1e-6).
struct OneCycleTests {
    static func cases() throws -> [[String: Any]] {
        let url = Shared.referenceDirectory.appendingPathComponent("torch_layers.json")
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        return ((root?["cases"] as? [[String: Any]]) ?? []).filter { $0["op"] as? String == "one_cycle" }
    }

    @Test func matchesPyTorch() throws {
        let cases = try Self.cases()
        #expect(cases.count == 2)
        for c in cases {
            let p = try #require(c["params"] as? [String: Any])
            func number(_ key: String) -> Double? { (p[key] as? NSNumber)?.doubleValue }
            let totalSteps = Int(try #require(number("total_steps")))
            var cycle = OneCycle(maxLR: try #require(number("max_lr")), totalSteps: totalSteps)
            if let v = number("pct_start") { cycle.pctStart = v }
            if let v = p["anneal_strategy"] as? String { cycle.anneal = try #require(OneCycle.Anneal(rawValue: v)) }
            if let v = number("div_factor") { cycle.divFactor = v }
            if let v = number("final_div_factor") { cycle.finalDivFactor = v }
            let lrs = try #require(c["lr"] as? [NSNumber]).map(\.doubleValue)
            let momenta = try #require(c["momentum_or_beta1"] as? [NSNumber]).map(\.doubleValue)
            let ours = (0..<cycle.totalSteps).map { cycle.values(at: $0) }
            let name = c["name"] as? String ?? "?"
            if let message = compareClose(ours.map(\.lr), lrs, rtol: 1e-6, atol: 1e-12, label: "\(name) lr") { Issue.record(Comment(rawValue: message)) }
            if let message = compareClose(ours.map(\.momentum), momenta, rtol: 1e-6, atol: 1e-12, label: "\(name) momentum") {
                Issue.record(Comment(rawValue: message))
            }
        }
    }

    @Test func threePhaseAndPastTheEnd() throws {
        var cycle = OneCycle(maxLR: 1, totalSteps: 100)
        cycle.threePhase = true
        #expect(abs(cycle.values(at: 0).lr - 0.04) < 1e-12)            // max / 25
        #expect(abs(cycle.values(at: 29).lr - 1) < 1e-12)              // end of phase 1: 0.3·100 − 1
        #expect(abs(cycle.values(at: 58).lr - 0.04) < 1e-12)           // back to the initial rate at 2·30 − 2
        #expect(abs(cycle.values(at: 99).lr - 0.04 / 1e4) < 1e-15)     // the minimum at T − 1
        #expect(cycle.values(at: 150).lr == cycle.values(at: 99).lr)   // held past the end
    }
}
