import Foundation

/// Strict, path-aware reading of a JSON object: every key must be known, every value of
/// the right type and range, and each error names the file, the key's path, the value and
/// what is allowed.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var path: String
    public var message: String
    public init(file: String, path: String, message: String) {
        self.file = file
        self.path = path
        self.message = message
    }
    public var description: String { "\(file): \(path.isEmpty ? "" : "\(path): ")\(message)" }
}

/// One JSON object being read; tracks which keys were used so `finish()` can reject the rest.
/// `null` counts as absent; JSON booleans are not numbers and numbers are not booleans.
public final class JSONObjectReader {
    public let file: String
    public let path: String
    let object: [String: JSONValue]
    private var used: Set<String> = []

    init(file: String, path: String, object: [String: JSONValue]) {
        self.file = file
        self.path = path
        self.object = object
    }

    /// Parses `data` strictly (see `StrictJSONParser`) and expects an object at the top level.
    static func parse(_ data: Data, file: String) throws -> JSONObjectReader {
        guard case .object(let object, _) = try StrictJSONParser.parse([UInt8](data), file: file) else {
            throw ConfigError(file: file, path: "", message: "expected a JSON object at the top level")
        }
        return JSONObjectReader(file: file, path: "", object: object)
    }

    public func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError(file: file, path: keyPath(key), message: message)
    }

    public func has(_ key: String) -> Bool { object[key] != nil && object[key] != .null }

    private func raw(_ key: String) -> JSONValue? {
        used.insert(key)
        guard let v = object[key], v != .null else { return nil }
        return v
    }

    private static func describe(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): return "\"\(s)\""
        case .number(let n): return format(n)
        case .bool(let b): return b ? "true" : "false"
        case .array: return "an array"
        case .object: return "an object"
        case .null: return "null"
        }
    }

    /// Integral numbers print without a fraction (`3`, not `3.0`), others as Swift prints them.
    private static func format(_ n: Double) -> String { integer(.number(n)).map(String.init) ?? "\(n)" }

    /// The value as an Int if it is an integral number of magnitude below 9e15 (exact in a Double).
    private static func integer(_ value: JSONValue) -> Int? {
        guard case .number(let n) = value, n.rounded() == n, abs(n) < 9e15 else { return nil }
        return Int(n)
    }

    private static func number(_ value: JSONValue) -> Double? {
        guard case .number(let n) = value else { return nil }
        return n
    }

    public func double(_ key: String, default value: Double? = nil, _ range: ClosedRange<Double>? = nil,
                allowed: String? = nil) throws -> Double {
        guard let v = raw(key) else {
            if let value { return value }
            throw error(key, "missing; expected a number\(allowed.map { " \($0)" } ?? "")")
        }
        guard let n = Self.number(v), n.isFinite else {
            throw error(key, "got \(Self.describe(v)); expected a number\(allowed.map { " \($0)" } ?? "")")
        }
        if let range, !range.contains(n) {
            throw error(key, "got \(Self.format(n)); expected \(allowed ?? "a number in \(range)")")
        }
        return n
    }

    public func int(_ key: String, default value: Int? = nil, _ range: ClosedRange<Int>? = nil, allowed: String? = nil) throws -> Int {
        guard let v = raw(key) else {
            if let value { return value }
            throw error(key, "missing; expected an integer\(allowed.map { " \($0)" } ?? "")")
        }
        guard let n = Self.integer(v) else {
            throw error(key, "got \(Self.describe(v)); expected an integer\(allowed.map { " \($0)" } ?? "")")
        }
        if let range, !range.contains(n) {
            throw error(key, "got \(n); expected \(allowed ?? "an integer in \(range.lowerBound)...\(range.upperBound)")")
        }
        return n
    }

    public func optionalInt(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        has(key) ? try int(key, range) : { used.insert(key); return nil }()
    }

    public func optionalDouble(_ key: String, _ range: ClosedRange<Double>, allowed: String? = nil) throws -> Double? {
        has(key) ? try double(key, range, allowed: allowed) : { used.insert(key); return nil }()
    }

    public func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let v = raw(key) else { return value }
        guard case .bool(let b) = v else {
            throw error(key, "got \(Self.describe(v)); expected true or false")
        }
        return b
    }

    public func string(_ key: String, default value: String? = nil, oneOf choices: [String]? = nil) throws -> String {
        guard let v = raw(key) else {
            if let value { return value }
            throw error(key, "missing; expected \(choices.map { "one of \($0.joined(separator: ", "))" } ?? "a string")")
        }
        guard case .string(let s) = v else {
            throw error(key, "got \(Self.describe(v)); expected \(choices.map { "one of \($0.joined(separator: ", "))" } ?? "a string")")
        }
        if let choices, !choices.contains(s) {
            throw error(key, "got \"\(s)\"; expected one of \(choices.joined(separator: ", "))")
        }
        return s
    }

    public func optionalString(_ key: String) throws -> String? {
        has(key) ? try string(key) : { used.insert(key); return nil }()
    }

    /// An array of strings, or nil when absent.
    public func strings(_ key: String) throws -> [String]? {
        guard let v = raw(key) else { return nil }
        guard case .array(let list) = v else {
            throw error(key, "got \(Self.describe(v)); expected an array of strings (URLs or directories)")
        }
        return try list.enumerated().map { i, item in
            guard case .string(let s) = item else {
                throw error(key, "got \(Self.describe(item)) at index \(i); expected an array of strings (URLs or directories)")
            }
            return s
        }
    }

    /// An int or a pair `[h, w]` of ints, each in `range`.
    public func pair(_ key: String, default value: (Int, Int)? = nil, _ range: ClosedRange<Int>) throws -> (Int, Int) {
        guard let v = raw(key) else {
            if let value { return value }
            throw error(key, "missing; expected an integer or a pair [height, width]")
        }
        if let n = Self.integer(v), range.contains(n) {
            return (n, n)
        }
        if case .array(let list) = v, list.count == 2, let a = Self.integer(list[0]), let b = Self.integer(list[1]),
           range.contains(a), range.contains(b) {
            return (a, b)
        }
        throw error(key, "got \(Self.describe(v)); expected an integer or a pair [height, width], each in \(range.lowerBound)...\(range.upperBound)")
    }

    public func doubles(_ key: String, count: Int, default value: [Double]) throws -> [Double] {
        guard let v = raw(key) else { return value }
        guard case .array(let list) = v, list.count == count else {
            throw error(key, "got \(Self.describe(v)); expected an array of \(count) numbers")
        }
        let numbers = list.compactMap(Self.number)
        guard numbers.count == count else {
            throw error(key, "got \(Self.describe(v)); expected an array of \(count) numbers")
        }
        return numbers
    }

    public func ints(_ key: String, count: Int) throws -> [Int] {
        guard let v = raw(key) else { throw error(key, "missing; expected an array of \(count) integers") }
        guard case .array(let list) = v, list.count == count,
              case let numbers = list.compactMap(Self.integer), numbers.count == count, numbers.allSatisfy({ $0 > 0 }) else {
            throw error(key, "got \(Self.describe(v)); expected an array of \(count) positive integers")
        }
        return numbers
    }

    public func object(_ key: String) throws -> JSONObjectReader? {
        guard let v = raw(key) else { return nil }
        guard case .object(let o, _) = v else { throw error(key, "got \(Self.describe(v)); expected an object") }
        return JSONObjectReader(file: file, path: keyPath(key), object: o)
    }

    public func objects(_ key: String) throws -> [JSONObjectReader] {
        guard let v = raw(key) else { throw error(key, "missing; expected an array of objects") }
        guard case .array(let list) = v else { throw error(key, "got \(Self.describe(v)); expected an array of objects") }
        return try list.enumerated().map { i, item in
            guard case .object(let o, _) = item else {
                throw ConfigError(file: file, path: "\(keyPath(key))[\(i)]", message: "got \(Self.describe(item)); expected an object")
            }
            return JSONObjectReader(file: file, path: "\(keyPath(key))[\(i)]", object: o)
        }
    }

    /// Rejects keys that were never asked for; the message lists the ones that were.
    public func finish() throws {
        let unknown = object.keys.filter { !used.contains($0) }.sorted()
        if let key = unknown.first {
            throw error(key, "unknown key; allowed keys here: \(used.sorted().joined(separator: ", "))")
        }
    }
}
