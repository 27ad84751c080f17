/// A JSON value as read by `StrictJSONParser`. Objects keep their keys in file order next to
/// the lookup table; numbers are Doubles, which hold every integer below 2^53 exactly.
enum JSONValue: Equatable {
    case object([String: JSONValue], keys: [String])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
}

/// A strict RFC 8259 parser over UTF-8 bytes, for config files.
///
/// Unlike `JSONSerialization` it rejects duplicate keys, trailing commas, comments, single
/// quotes, NaN and Infinity, numbers JSON does not allow (`01`, `+1`, `.5`, `1.`) or that
/// overflow a Double, raw control characters and bad escapes in strings, invalid UTF-8, and
/// nesting deeper than `maximumDepth` (so 100,000 `[` cannot exhaust the stack). Every
/// error is one line naming the file, the key path, the line and column, and what was expected:
///
///     lenet.json: not valid JSON at optimizer.lr (line 5, column 11): NaN is not a JSON number; expected a finite number
///     lenet.json: optimizer: duplicate key "lr" (line 6, column 5); each key may appear once
///
/// Syntax errors keep `ConfigError.path` empty and name the path in the message, so their
/// description always starts with "<file>: not valid JSON".
struct StrictJSONParser {
    /// Objects and arrays nested deeper than this are rejected; a config needs depth 5.
    static let maximumDepth = 64

    private let bytes: [UInt8]
    private let file: String
    private var start = 0  // after the byte order mark, if any
    private var position = 0
    /// The key path of the value being parsed, one segment per level: `"lr"` or `"[3]"`.
    private var path: [String] = []

    /// Parses `bytes` as one JSON value, optionally preceded by a UTF-8 byte order mark and
    /// surrounded by whitespace; `file` names the input in errors.
    static func parse(_ bytes: [UInt8], file: String) throws(ConfigError) -> JSONValue {
        var parser = StrictJSONParser(bytes: bytes, file: file)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { parser.start = 3; parser.position = 3 }
        parser.skipWhitespace()
        guard parser.position < bytes.count else { throw parser.failure("the input is empty; expected a JSON value") }
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.position == bytes.count else {
            throw parser.failure("\(parser.found()) after the top-level value; expected the end of the input")
        }
        return value
    }

    private init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    // MARK: Values

    private mutating func parseValue() throws(ConfigError) -> JSONValue {
        let valueStart = position
        switch position < bytes.count ? bytes[position] : 0 {
        case ascii("{"): return try parseObject()
        case ascii("["): return try parseArray()
        case ascii("\""): return .string(try parseString())
        case ascii("-"), ascii("0")...ascii("9"): return .number(try parseNumber())
        case ascii("+"): throw failure("a number may not start with \"+\"; expected a digit or \"-\"")
        case ascii("."): throw failure("a number may not start with \".\"; expected a digit before it (0.5, not .5)")
        case ascii("a")...ascii("z"), ascii("A")...ascii("Z"):
            while position < bytes.count, isWordByte(bytes[position]) { position += 1 }
            switch String(decoding: bytes[valueStart..<position], as: UTF8.self) {
            case "true": return .bool(true)
            case "false": return .bool(false)
            case "null": return .null
            case let word where word == "NaN" || word == "Infinity":
                throw failure("\(word) is not a JSON number; expected a finite number", at: valueStart)
            case let word:
                throw failure("unexpected \"\(word)\"; expected \(Self.aValue)", at: valueStart)
            }
        default: throw failure("\(found()); expected \(Self.aValue)")
        }
    }

    private static let aValue = "a value (object, array, string, number, true, false or null)"

    private mutating func parseObject() throws(ConfigError) -> JSONValue {
        try checkDepth()
        position += 1  // {
        var members: [String: JSONValue] = [:]
        var keys: [String] = []
        skipWhitespace()
        if consume("}") { return .object(members, keys: keys) }
        while true {
            guard position < bytes.count, bytes[position] == ascii("\"") else {
                throw failure("\(found()); expected a key in double quotes")
            }
            let keyStart = position
            let key = try parseString()
            guard members[key] == nil else {
                throw ConfigError(file: file, path: renderedPath,
                                  message: "duplicate key \(jsonString(key)) \(location(keyStart)); each key may appear once")
            }
            skipWhitespace()
            guard consume(":") else { throw failure("\(found()); expected \":\" after the key \(jsonString(key))") }
            skipWhitespace()
            path.append(key)
            members[key] = try parseValue()
            path.removeLast()
            keys.append(key)
            skipWhitespace()
            if consume("}") { return .object(members, keys: keys) }
            let comma = position
            guard consume(",") else { throw failure("\(found()); expected \",\" or \"}\"") }
            skipWhitespace()
            if position < bytes.count, bytes[position] == ascii("}") {
                throw failure("trailing comma before \"}\"; expected another key after \",\"", at: comma)
            }
        }
    }

    private mutating func parseArray() throws(ConfigError) -> JSONValue {
        try checkDepth()
        position += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if consume("]") { return .array(elements) }
        while true {
            path.append("[\(elements.count)]")
            elements.append(try parseValue())
            path.removeLast()
            skipWhitespace()
            if consume("]") { return .array(elements) }
            let comma = position
            guard consume(",") else { throw failure("\(found()); expected \",\" or \"]\"") }
            skipWhitespace()
            if position < bytes.count, bytes[position] == ascii("]") {
                throw failure("trailing comma before \"]\"; expected another value after \",\"", at: comma)
            }
        }
    }

    private func checkDepth() throws(ConfigError) {
        // `path` has one segment per enclosing object or array.
        guard path.count < Self.maximumDepth else {
            throw failure("nesting deeper than \(Self.maximumDepth) levels; expected at most \(Self.maximumDepth) nested objects and arrays")
        }
    }

    /// Parses a string starting at its opening quote and returns its contents.
    private mutating func parseString() throws(ConfigError) -> String {
        let open = position
        position += 1  // "
        var utf8: [UInt8] = []
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case ascii("\""):
                position += 1
                return String(decoding: utf8, as: UTF8.self)  // validated while read, so exact
            case ascii("\\"):
                let scalar = try parseEscape()
                UTF8.encode(scalar) { utf8.append($0) }
            case 0..<0x20:
                throw failure("unescaped control character U+\(hex4(UInt32(byte))) in a string; expected an escape such as \\n, \\t or \\u\(hex4(UInt32(byte)))")
            case 0x20..<0x80:
                utf8.append(byte)
                position += 1
            default:
                guard let length = scalarLength(at: position) else {
                    throw failure("invalid UTF-8 (byte \(hexByte(byte))) in a string; expected UTF-8 text")
                }
                utf8.append(contentsOf: bytes[position..<position + length])
                position += length
            }
        }
        throw failure("unterminated string; expected a closing \"", at: open)
    }

    /// Parses one escape sequence starting at its backslash.
    private mutating func parseEscape() throws(ConfigError) -> Unicode.Scalar {
        let escape = position
        position += 1  // backslash
        guard position < bytes.count else { throw failure("unterminated string; expected a closing \"") }
        position += 1
        switch bytes[position - 1] {
        case ascii("\""): return "\""
        case ascii("\\"): return "\\"
        case ascii("/"): return "/"
        case ascii("b"): return "\u{08}"
        case ascii("f"): return "\u{0C}"
        case ascii("n"): return "\n"
        case ascii("r"): return "\r"
        case ascii("t"): return "\t"
        case ascii("u"):
            let first = try parseHex4(escape: escape)
            if (0xDC00...0xDFFF).contains(first) {
                throw failure("unpaired low surrogate \\u\(hex4(first)); expected a high surrogate \\uD800-\\uDBFF before it", at: escape)
            }
            guard (0xD800...0xDBFF).contains(first) else { return Unicode.Scalar(first)! }
            let unpaired = "unpaired high surrogate \\u\(hex4(first)); expected a low surrogate \\uDC00-\\uDFFF after it"
            guard bytes[position...].starts(with: [ascii("\\"), ascii("u")]) else { throw failure(unpaired, at: escape) }
            position += 2
            let second = try parseHex4(escape: position - 2)
            guard (0xDC00...0xDFFF).contains(second) else { throw failure(unpaired, at: escape) }
            return Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))!
        default:
            position -= 1
            throw failure("invalid escape \"\\\(describeCharacter())\" in a string; expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX", at: escape)
        }
    }

    /// Parses the four hex digits after `\u` (the escape starts at `escape`).
    private mutating func parseHex4(escape: Int) throws(ConfigError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard position < bytes.count, let digit = hexDigit(bytes[position]) else {
                let text = String(decoding: bytes[escape..<position], as: UTF8.self)
                throw failure("invalid escape \"\(text)\"; expected four hex digits after \\u", at: escape)
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private mutating func parseNumber() throws(ConfigError) -> Double {
        let numberStart = position
        var text: String { String(decoding: bytes[numberStart..<position], as: UTF8.self) }
        _ = consume("-")
        if bytes[position...].starts(with: "Infinity".utf8) {
            throw failure("-Infinity is not a JSON number; expected a finite number", at: numberStart)
        }
        guard isDigitHere() else { throw failure("\(found()); expected a digit after \"-\"") }
        if bytes[position] == ascii("0"), position + 1 < bytes.count, isDigit(bytes[position + 1]) {
            skipDigits()
            throw failure("leading zero in \(text); expected 0 alone or a number that starts with 1-9", at: numberStart)
        }
        skipDigits()
        if consume(".") {
            guard isDigitHere() else { throw failure("\(found()) after \(text); expected a digit after the decimal point") }
            skipDigits()
        }
        if consume("e") || consume("E") {
            _ = consume("+") || consume("-")
            guard isDigitHere() else { throw failure("\(found()) after \(text); expected a digit in the exponent") }
            skipDigits()
        }
        guard let value = Double(text), value.isFinite else {
            throw failure("the number \(text) overflows a Double; expected a magnitude below 1.8e308", at: numberStart)
        }
        return value
    }

    // MARK: Bytes

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case ascii(" "), ascii("\t"), ascii("\n"), ascii("\r"): position += 1
            default: return
            }
        }
    }

    private mutating func skipDigits() {
        while isDigitHere() { position += 1 }
    }

    private mutating func consume(_ character: Unicode.Scalar) -> Bool {
        guard position < bytes.count, bytes[position] == UInt8(character.value) else { return false }
        position += 1
        return true
    }

    private func isDigitHere() -> Bool { position < bytes.count && isDigit(bytes[position]) }

    /// The length of the valid UTF-8 sequence at `index`, or nil if it is not valid UTF-8
    /// (overlong forms, surrogates and code points above U+10FFFF are not).
    private func scalarLength(at index: Int) -> Int? {
        var decoder = UTF8()
        var iterator = bytes[index...].makeIterator()
        guard case .scalarValue(let scalar) = decoder.decode(&iterator) else { return nil }
        return UTF8.width(scalar)
    }

    // MARK: Errors

    private var renderedPath: String {
        path.reduce("") { $1.hasPrefix("[") || $0.isEmpty ? $0 + $1 : "\($0).\($1)" }
    }

    /// `(line L, column C)` of a byte offset; columns count characters (Unicode scalars).
    private func location(_ offset: Int) -> String {
        var line = 1, column = 1
        for byte in bytes[start..<min(offset, bytes.count)] {
            if byte == ascii("\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return "(line \(line), column \(column))"
    }

    private func failure(_ message: String, at offset: Int? = nil) -> ConfigError {
        let at = renderedPath.isEmpty ? "" : " at \(renderedPath)"
        return ConfigError(file: file, path: "", message: "not valid JSON\(at) \(location(offset ?? position)): \(message)")
    }

    /// What is at the current position, for "…; expected …" messages.
    private func found() -> String {
        guard position < bytes.count else { return "unexpected end of input" }
        let next = position + 1 < bytes.count ? bytes[position + 1] : 0
        if bytes[position] == ascii("/") && (next == ascii("/") || next == ascii("*")) {
            return "comments are not allowed in JSON"
        }
        if bytes[position] == ascii("'") { return "single quotes are not allowed in JSON (strings and keys take double quotes)" }
        if bytes[position] >= 0x80, scalarLength(at: position) == nil {
            return "invalid UTF-8 (byte \(hexByte(bytes[position])))"
        }
        return "unexpected \(bytes[position] < 0x20 ? describeCharacter() : "\"\(describeCharacter())\"")"
    }

    /// The character at the current position: itself, U+XXXX for a control character, or
    /// `byte 0xXX` if it is not valid UTF-8.
    private func describeCharacter() -> String {
        let byte = bytes[position]
        if byte < 0x20 { return "U+\(hex4(UInt32(byte)))" }
        guard let length = scalarLength(at: position) else { return "byte \(hexByte(byte))" }
        return String(decoding: bytes[position..<position + length], as: UTF8.self)
    }
}

private func ascii(_ character: Unicode.Scalar) -> UInt8 { UInt8(character.value) }
private func isDigit(_ byte: UInt8) -> Bool { (ascii("0")...ascii("9")).contains(byte) }
private func isWordByte(_ byte: UInt8) -> Bool {
    isDigit(byte) || (ascii("a")...ascii("z")).contains(byte) || (ascii("A")...ascii("Z")).contains(byte) || byte == ascii("_")
}
private func hexDigit(_ byte: UInt8) -> UInt32? {
    switch byte {
    case ascii("0")...ascii("9"): return UInt32(byte - ascii("0"))
    case ascii("a")...ascii("f"): return UInt32(byte - ascii("a") + 10)
    case ascii("A")...ascii("F"): return UInt32(byte - ascii("A") + 10)
    default: return nil
    }
}
private func hex4(_ value: UInt32) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}
private func hexByte(_ byte: UInt8) -> String { "0x" + String(byte, radix: 16, uppercase: true) }
