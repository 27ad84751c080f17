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
final class JSONObjectReader {
    let file: String
    let path: String
    let object: [String: Any]
    private var used: Set<String> = []

    init(file: String, path: String, object: [String: Any]) {
        self.file = file
        self.path = path
        self.object = object
    }

    static func parse(_ data: Data, file: String) throws -> JSONObjectReader {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw ConfigError(file: file, path: "", message: "not valid JSON (\((error as NSError).userInfo["NSDebugDescription"] ?? error))")
        }
        guard let object = value as? [String: Any] else {
            throw ConfigError(file: file, path: "", message: "expected a JSON object at the top level")
        }
        return JSONObjectReader(file: file, path: "", object: object)
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError(file: file, path: keyPath(key), message: message)
    }

    func has(_ key: String) -> Bool { object[key] != nil && !(object[key] is NSNull) }

    private func raw(_ key: String) -> Any? {
        used.insert(key)
        guard let v = object[key], !(v is NSNull) else { return nil }
        return v
    }

    private static func describe(_ value: Any) -> String {
        if let s = value as? String { return "\"\(s)\"" }
        if let n = value as? NSNumber { return isBool(n) ? (n.boolValue ? "true" : "false") : "\(n)" }
        if value is [Any] { return "an array" }
        if value is [String: Any] { return "an object" }
        return "\(value)"
    }

    /// JSON `true`/`false` arrive as NSNumber too; their type code is `c`.
    private static func isBool(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    func double(_ key: String, default value: Double? = nil, _ range: ClosedRange<Double>? = nil,
                allowed: String? = nil) throws -> Double {
        guard let v = raw(key) else {
            if let value { return value }
            throw error(key, "missing; expected a number\(allowed.map { " \($0)" } ?? "")")
        }
        guard let n = v as? NSNumber, !Self.isBool(n), n.doubleValue.isFinite else {
            throw error(key, "got \(Self.describe(v)); expected a number\(allowed.map { " \($0)" } ?? "")")
        }
        if let range, !range.contains(n.doubleValue) {
            throw error(key, "got \(n); expected \(allowed ?? "a number in \(range)")")
        }
        return n.doubleValue
    }

    func int(_ key: String, default value: Int? = nil, _ range: ClosedRange<Int>? = nil, allowed: String? = nil) throws -> Int {
        guard let v = raw(key) else {
            if let value { return value }
            throw error(key, "missing; expected an integer\(allowed.map { " \($0)" } ?? "")")
        }
        guard let n = v as? NSNumber, !Self.isBool(n), n.doubleValue.rounded() == n.doubleValue,
              abs(n.doubleValue) < 9e15 else {
            throw error(key, "got \(Self.describe(v)); expected an integer\(allowed.map { " \($0)" } ?? "")")
        }
        if let range, !range.contains(n.intValue) {
            throw error(key, "got \(n.intValue); expected \(allowed ?? "an integer in \(range.lowerBound)...\(range.upperBound)")")
        }
        return n.intValue
    }

    func optionalInt(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        has(key) ? try int(key, range) : { used.insert(key); return nil }()
    }

    func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let v = raw(key) else { return value }
        guard let n = v as? NSNumber, Self.isBool(n) else {
            throw error(key, "got \(Self.describe(v)); expected true or false")
        }
        return n.boolValue
    }

    func string(_ key: String, default value: String? = nil, oneOf choices: [String]? = nil) throws -> String {
        guard let v = raw(key) else {
            if let value { return value }
            throw error(key, "missing; expected \(choices.map { "one of \($0.joined(separator: ", "))" } ?? "a string")")
        }
        guard let s = v as? String else {
            throw error(key, "got \(Self.describe(v)); expected \(choices.map { "one of \($0.joined(separator: ", "))" } ?? "a string")")
        }
        if let choices, !choices.contains(s) {
            throw error(key, "got \"\(s)\"; expected one of \(choices.joined(separator: ", "))")
        }
        return s
    }

    func optionalString(_ key: String) throws -> String? {
        has(key) ? try string(key) : { used.insert(key); return nil }()
    }

    /// An int or a pair `[h, w]` of ints, each in `range`.
    func pair(_ key: String, default value: (Int, Int)? = nil, _ range: ClosedRange<Int>) throws -> (Int, Int) {
        guard let v = raw(key) else {
            if let value { return value }
            throw error(key, "missing; expected an integer or a pair [height, width]")
        }
        if let n = v as? NSNumber, !Self.isBool(n), n.doubleValue.rounded() == n.doubleValue, range.contains(n.intValue) {
            return (n.intValue, n.intValue)
        }
        if let list = v as? [Any], list.count == 2,
           let a = list[0] as? NSNumber, let b = list[1] as? NSNumber, !Self.isBool(a), !Self.isBool(b),
           a.doubleValue.rounded() == a.doubleValue, b.doubleValue.rounded() == b.doubleValue,
           range.contains(a.intValue), range.contains(b.intValue) {
            return (a.intValue, b.intValue)
        }
        throw error(key, "got \(Self.describe(v)); expected an integer or a pair [height, width], each in \(range.lowerBound)...\(range.upperBound)")
    }

    func doubles(_ key: String, count: Int, default value: [Double]) throws -> [Double] {
        guard let v = raw(key) else { return value }
        guard let list = v as? [Any], list.count == count,
              let numbers = list as? [NSNumber], numbers.allSatisfy({ !Self.isBool($0) }) else {
            throw error(key, "got \(Self.describe(v)); expected an array of \(count) numbers")
        }
        return numbers.map(\.doubleValue)
    }

    func ints(_ key: String, count: Int) throws -> [Int] {
        guard let v = raw(key) else { throw error(key, "missing; expected an array of \(count) integers") }
        guard let list = v as? [NSNumber], list.count == count,
              list.allSatisfy({ !Self.isBool($0) && $0.doubleValue.rounded() == $0.doubleValue && $0.intValue > 0 }) else {
            throw error(key, "got \(Self.describe(v)); expected an array of \(count) positive integers")
        }
        return list.map(\.intValue)
    }

    func object(_ key: String) throws -> JSONObjectReader? {
        guard let v = raw(key) else { return nil }
        guard let o = v as? [String: Any] else { throw error(key, "got \(Self.describe(v)); expected an object") }
        return JSONObjectReader(file: file, path: keyPath(key), object: o)
    }

    func objects(_ key: String) throws -> [JSONObjectReader] {
        guard let v = raw(key) else { throw error(key, "missing; expected an array of objects") }
        guard let list = v as? [Any] else { throw error(key, "got \(Self.describe(v)); expected an array of objects") }
        return try list.enumerated().map { i, item in
            guard let o = item as? [String: Any] else {
                throw ConfigError(file: file, path: "\(keyPath(key))[\(i)]", message: "got \(Self.describe(item)); expected an object")
            }
            return JSONObjectReader(file: file, path: "\(keyPath(key))[\(i)]", object: o)
        }
    }

    /// Rejects keys that were never asked for; the message lists the ones that were.
    func finish() throws {
        let unknown = object.keys.filter { !used.contains($0) }.sorted()
        if let key = unknown.first {
            throw error(key, "unknown key; allowed keys here: \(used.sorted().joined(separator: ", "))")
        }
    }
}
