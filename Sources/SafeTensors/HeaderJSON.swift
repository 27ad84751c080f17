// MARK: - JSON value

/// A JSON value as parsed from a safetensors header. Objects keep their members in file
/// order; numbers keep their literal text and are converted only where an integer is
/// expected, so no value is ever rounded through Double.
enum JSONValue {
    case object([JSONMember])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// A short name of the kind of value, for error messages.
    var kindName: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number(let text): return "the number \(text)"
        case .bool(let value): return "\(value)"
        case .null: return "null"
        }
    }

    /// The value as a non-negative Int if it is an integer literal that fits, else nil.
    var nonNegativeInt: Int? {
        guard case .number(let text) = self, !text.isEmpty else { return nil }
        var result = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, overflowMultiply) = result.multipliedReportingOverflow(by: 10)
            let (sum, overflowAdd) = shifted.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            if overflowMultiply || overflowAdd { return nil }
            result = sum
        }
        return result
    }
}

/// One `"key": value` pair of a JSON object.
struct JSONMember {
    var key: String
    var value: JSONValue
}

// MARK: - Parser

/// Why the header is not acceptable JSON.
enum JSONParseFailure: Error {
    case syntax(offset: Int, reason: String)
    case duplicateKey(String)
}

/// A strict RFC 8259 parser over the header bytes (already checked to be UTF-8).
///
/// Unlike `JSONSerialization` it reports duplicate keys, bounds nesting depth (so a header of
/// ten million `[` cannot exhaust the stack), and never converts numbers to floating point.
struct JSONParser {
    /// Deeper nesting than this is rejected; a valid header needs depth 3.
    static let maximumDepth = 32

    private let bytes: [UInt8]
    private var position = 0

    /// Parses `bytes` as one JSON value followed only by whitespace (the reference writer
    /// pads the header with spaces).
    static func parse(_ bytes: [UInt8]) throws(JSONParseFailure) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else {
            throw parser.failure("unexpected \(parser.describeCurrent()) after the top-level value")
        }
        return value
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    // MARK: Values

    private mutating func parseValue(depth: Int) throws(JSONParseFailure) -> JSONValue {
        guard depth < JSONParser.maximumDepth else {
            throw failure("nesting deeper than \(JSONParser.maximumDepth) levels")
        }
        guard position < bytes.count else { throw failure("unexpected end of header, expected a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw failure("unexpected \(describeCurrent()), expected a value")
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONParseFailure) -> JSONValue {
        position += 1  // {
        var members: [JSONMember] = []
        var seen = Set<String>()
        skipWhitespace()
        if consume(UInt8(ascii: "}")) { return .object(members) }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw failure("unexpected \(describeCurrent()), expected a string key")
            }
            let key = try parseString()
            guard seen.insert(key).inserted else { throw .duplicateKey(key) }
            skipWhitespace()
            guard consume(UInt8(ascii: ":")) else { throw failure("unexpected \(describeCurrent()), expected ':'") }
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            members.append(JSONMember(key: key, value: value))
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            if consume(UInt8(ascii: "}")) { return .object(members) }
            throw failure("unexpected \(describeCurrent()), expected ',' or '}'")
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseFailure) -> JSONValue {
        position += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if consume(UInt8(ascii: "]")) { return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            if consume(UInt8(ascii: "]")) { return .array(elements) }
            throw failure("unexpected \(describeCurrent()), expected ',' or ']'")
        }
    }

    /// Parses a string starting at the opening quote; returns its decoded contents.
    private mutating func parseString() throws(JSONParseFailure) -> String {
        position += 1  // "
        var scalars = String.UnicodeScalarView()
        var runStart = position
        func flushRun(_ end: Int) {
            // The run contains no quote, backslash or control byte, and the header is valid
            // UTF-8, so this decoding is exact.
            scalars.append(contentsOf: String(decoding: bytes[runStart..<end], as: UTF8.self).unicodeScalars)
        }
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                flushRun(position)
                position += 1
                return String(scalars)
            }
            if byte < 0x20 {
                throw failure("control byte 0x\(String(byte, radix: 16)) inside a string (must be escaped)")
            }
            if byte != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            flushRun(position)
            position += 1
            guard position < bytes.count else { break }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"): scalars.append(try parseUnicodeEscape())
            default:
                position -= 1
                throw failure("invalid escape \\\(describeCurrent())")
            }
            runStart = position
        }
        throw failure("unterminated string")
    }

    /// Parses the `XXXX` after `\u` (and a following `\uXXXX` low surrogate if needed).
    private mutating func parseUnicodeEscape() throws(JSONParseFailure) -> Unicode.Scalar {
        let first = try parseHex4()
        if (0xD800...0xDBFF).contains(first) {
            guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                bytes[position + 1] == UInt8(ascii: "u")
            else { throw failure("high surrogate \\u\(String(first, radix: 16)) without a low surrogate") }
            position += 2
            let second = try parseHex4()
            guard (0xDC00...0xDFFF).contains(second) else {
                throw failure("high surrogate followed by \\u\(String(second, radix: 16)), not a low surrogate")
            }
            let value = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            guard let scalar = Unicode.Scalar(value) else { throw failure("invalid surrogate pair") }
            return scalar
        }
        guard let scalar = Unicode.Scalar(first) else {
            throw failure("lone low surrogate \\u\(String(first, radix: 16))")
        }
        return scalar
    }

    private mutating func parseHex4() throws(JSONParseFailure) -> UInt32 {
        guard position + 4 <= bytes.count else { throw failure("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("invalid hex digit \(describeCurrent()) in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// Parses `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` and returns its text.
    private mutating func parseNumber() throws(JSONParseFailure) -> String {
        let start = position
        _ = consume(UInt8(ascii: "-"))
        if consume(UInt8(ascii: "0")) {
            // a leading zero stands alone
        } else {
            guard consumeDigits() else { throw failure("expected a digit") }
        }
        if consume(UInt8(ascii: ".")) {
            guard consumeDigits() else { throw failure("expected a digit after '.'") }
        }
        if consume(UInt8(ascii: "e")) || consume(UInt8(ascii: "E")) {
            if !consume(UInt8(ascii: "+")) { _ = consume(UInt8(ascii: "-")) }
            guard consumeDigits() else { throw failure("expected a digit in the exponent") }
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    /// Consumes one or more ASCII digits; returns false if there was none.
    private mutating func consumeDigits() -> Bool {
        let start = position
        while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
            position += 1
        }
        return position > start
    }

    // MARK: Helpers

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseFailure) {
        let count = literal.utf8CodeUnitCount
        let matches = literal.withUTF8Buffer { expected in
            position + count <= bytes.count && bytes[position..<position + count].elementsEqual(expected)
        }
        guard matches else { throw failure("unexpected \(describeCurrent()), expected \(literal)") }
        position += count
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): position += 1
            default: return
            }
        }
    }

    private func describeCurrent() -> String {
        guard position < bytes.count else { return "end of header" }
        let byte = bytes[position]
        if byte >= 0x21, byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16))"
    }

    private func failure(_ reason: String) -> JSONParseFailure {
        .syntax(offset: position, reason: reason)
    }
}

// MARK: - Writer helpers

/// Appends `string` as a JSON string literal, escaping as serde_json does (quote, backslash,
/// `\b \f \n \r \t`, other control characters as `\u00xx`; everything else raw UTF-8).
func appendJSONString(_ string: String, to output: inout [UInt8]) {
    output.append(UInt8(ascii: "\""))
    for byte in string.utf8 {
        switch byte {
        case UInt8(ascii: "\""): output.append(contentsOf: Array("\\\"".utf8))
        case UInt8(ascii: "\\"): output.append(contentsOf: Array("\\\\".utf8))
        case 0x08: output.append(contentsOf: Array("\\b".utf8))
        case 0x0C: output.append(contentsOf: Array("\\f".utf8))
        case 0x0A: output.append(contentsOf: Array("\\n".utf8))
        case 0x0D: output.append(contentsOf: Array("\\r".utf8))
        case 0x09: output.append(contentsOf: Array("\\t".utf8))
        case 0..<0x20:
            let hex = String(byte, radix: 16)
            output.append(contentsOf: Array("\\u00\(hex.count == 1 ? "0" : "")\(hex)".utf8))
        default: output.append(byte)
        }
    }
    output.append(UInt8(ascii: "\""))
}

/// The offset of the first byte that breaks UTF-8 validity, or nil if `bytes` is valid UTF-8.
func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
    var decoder = UTF8()
    var iterator = bytes.makeIterator()
    var offset = 0
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue(let scalar): offset += UTF8.width(scalar)
        case .emptyInput: return nil
        case .error: return offset
        }
    }
}
