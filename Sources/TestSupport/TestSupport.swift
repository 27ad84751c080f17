import Foundation

/// Where the project's shared material lives: `../shared` beside the package root.
public enum Shared {
    /// The package root, found from this source file's location.
    public static let packageRoot: URL = {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // TestSupport
            .deletingLastPathComponent()  // Sources
            .deletingLastPathComponent()  // package root
    }()

    /// `../shared` relative to the package root.
    public static let root: URL = packageRoot.deletingLastPathComponent()
        .appendingPathComponent("shared")

    public static var mnistDirectory: URL { root.appendingPathComponent("data/mnist") }
    public static var referenceDirectory: URL { root.appendingPathComponent("reference") }
}

/// One case of `reference/torch_ops.json`.
public struct ReferenceCase: Sendable {
    public struct Array: Sendable {
        public var shape: [Int]
        public var data: [Double]
    }
    public var name: String
    public var op: String
    /// Raw `params` object (values are numbers, strings or arrays of numbers).
    public var params: [String: any Sendable]
    public var inputs: [String: Array]
    public var output: Array?
    public var gradOutput: Array?
    public var grads: [String: Array]
    /// Module state before and after the call (batch norm's running statistics).
    public var state: [String: Array] = [:]
    public var stateAfter: [String: Array] = [:]
    /// Optimizer cases.
    public var gradsPerStep: [[Double]]
    public var paramsAfterStep: [[Double]]

    public func int(_ key: String) -> Int? { (params[key] as? NSNumber)?.intValue }
    public func ints(_ key: String) -> [Int]? { (params[key] as? [NSNumber])?.map(\.intValue) }
    public func string(_ key: String) -> String? { params[key] as? String }
}

public enum ReferenceError: Error, CustomStringConvertible {
    case malformed(String)
    public var description: String {
        switch self { case .malformed(let s): return "torch_ops.json: \(s)" }
    }
}

/// Every case of `reference/torch_ops.json`, parsed once per process (lazily and
/// thread-safely: tests run in parallel).
public func loadReferenceCases() throws -> [ReferenceCase] {
    try cachedReferenceCases.get()
}

/// Every case of `reference/torch_layers.json` (the same format), parsed once per process.
public func loadLayerReferenceCases() throws -> [ReferenceCase] {
    try cachedLayerReferenceCases.get()
}

private let cachedReferenceCases = parsedReferenceCases("torch_ops.json")
private let cachedLayerReferenceCases = parsedReferenceCases("torch_layers.json")

private func parsedReferenceCases(_ file: String) -> Result<[ReferenceCase], ReferenceError> {
    do { return .success(try parseReferenceCases(file)) } catch let error as ReferenceError {
        return .failure(error)
    } catch {
        return .failure(.malformed("\(file): cannot read: \(error)"))
    }
}

private func parseReferenceCases(_ file: String) throws -> [ReferenceCase] {
    let url = Shared.referenceDirectory.appendingPathComponent(file)
    let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
    guard let cases = root?["cases"] as? [[String: Any]] else {
        throw ReferenceError.malformed("no cases array")
    }
    func array(_ any: Any?) -> ReferenceCase.Array? {
        if let d = any as? [String: Any] {
            let shape = (d["shape"] as? [NSNumber])?.map(\.intValue) ?? []
            let data: [Double]
            if let list = d["data"] as? [NSNumber] { data = list.map(\.doubleValue) }
            else if let x = d["data"] as? NSNumber { data = [x.doubleValue] }
            else { return nil }
            return .init(shape: shape, data: data)
        }
        if let list = any as? [NSNumber] { return .init(shape: [list.count], data: list.map(\.doubleValue)) }
        if let x = any as? NSNumber { return .init(shape: [], data: [x.doubleValue]) }
        return nil
    }
    return try cases.map { c in
        guard let name = c["name"] as? String, let op = c["op"] as? String else {
            throw ReferenceError.malformed("case without name/op")
        }
        var params: [String: any Sendable] = [:]
        for (k, v) in (c["params"] as? [String: Any]) ?? [:] {
            if let s = v as? String { params[k] = s }
            else if let list = v as? [NSNumber] { params[k] = list }
            else if let n = v as? NSNumber { params[k] = n }
        }
        var inputs: [String: ReferenceCase.Array] = [:]
        for (k, v) in (c["inputs"] as? [String: Any]) ?? [:] { inputs[k] = array(v) }
        var grads: [String: ReferenceCase.Array] = [:]
        for (k, v) in (c["grads"] as? [String: Any]) ?? [:] { grads[k] = array(v) }
        // Each step is an `{shape, data}` array.
        let steps = (c["grads_per_step"] as? [Any])?.compactMap { array($0)?.data } ?? []
        let after = (c["params_after_step"] as? [Any])?.compactMap { array($0)?.data } ?? []
        var result = ReferenceCase(
            name: name, op: op, params: params, inputs: inputs, output: array(c["output"]),
            gradOutput: array(c["grad_output"]), grads: grads,
            gradsPerStep: steps, paramsAfterStep: after)
        for (k, v) in (c["state"] as? [String: Any]) ?? [:] { result.state[k] = array(v) }
        for (k, v) in (c["state_after"] as? [String: Any]) ?? [:] { result.stateAfter[k] = array(v) }
        return result
    }
}

/// Compares two arrays element by element with `|a - e| <= atol + rtol * |e|`.
/// Returns nil when they agree, else a message naming the first bad index, both values,
/// how many elements disagree and the maximum absolute difference.
public func compareClose(
    _ actual: [Double], _ expected: [Double], rtol: Double = 1e-4, atol: Double = 1e-5,
    label: String = ""
) -> String? {
    guard actual.count == expected.count else {
        return "\(label): count \(actual.count) != expected \(expected.count)"
    }
    var firstBad: Int?
    var bad = 0
    var maxDiff = 0.0
    for i in 0..<actual.count {
        let d = abs(actual[i] - expected[i])
        if !(d <= atol + rtol * abs(expected[i])) {  // NaN counts as bad
            bad += 1
            if firstBad == nil { firstBad = i }
        }
        if d > maxDiff || d.isNaN { maxDiff = d }
    }
    guard let i = firstBad else { return nil }
    return "\(label): \(bad) of \(actual.count) elements differ (rtol \(rtol), atol \(atol)); "
        + "first at index \(i): got \(actual[i]), expected \(expected[i]); max |diff| \(maxDiff)"
}

public func compareClose(
    _ actual: [Float], _ expected: [Double], rtol: Double = 1e-4, atol: Double = 1e-5,
    label: String = ""
) -> String? {
    compareClose(actual.map(Double.init), expected, rtol: rtol, atol: atol, label: label)
}

/// A fresh empty temporary directory, unique per call.
public func makeTemporaryDirectory(_ prefix: String = "mnist-train-test") throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
