import Foundation

/// Where a run's human-readable output goes: stdout normally, stderr when stdout is
/// reserved for the JSON summary, nowhere with `quiet`. A live progress line is drawn only
/// when that stream is a terminal.
public final class Console: @unchecked Sendable {
    public let quiet: Bool
    public let jsonOnStdout: Bool
    private let handle: FileHandle
    public let isTerminal: Bool
    private var progressShown = false

    public init(quiet: Bool, jsonOnStdout: Bool) {
        self.quiet = quiet
        self.jsonOnStdout = jsonOnStdout
        handle = jsonOnStdout ? FileHandle.standardError : FileHandle.standardOutput
        isTerminal = isatty(jsonOnStdout ? 2 : 1) == 1
    }

    /// A line of the log.
    public func line(_ text: String) {
        guard !quiet else { return }
        clearProgress()
        write(text + "\n")
    }

    /// Replaces the live progress line (terminals only).
    public func progress(_ text: String) {
        guard !quiet, isTerminal else { return }
        write("\r\u{1B}[2K" + text)
        progressShown = true
    }

    public func clearProgress() {
        guard progressShown else { return }
        write("\r\u{1B}[2K")
        progressShown = false
    }

    /// Machine-readable output: always stdout.
    public func json(_ text: String) {
        FileHandle.standardOutput.write((text + "\n").data(using: .utf8)!)
    }

    private func write(_ text: String) { handle.write(text.data(using: .utf8)!) }
}

/// `1:05` or `12:03:09`.
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "--:--" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

/// A JSON object literal from ordered key/value pairs (numbers, strings, bools, arrays).
func jsonObject(_ pairs: KeyValuePairs<String, Any>) -> String {
    "{" + pairs.map { "\(jsonString($0.key)): \(jsonValue($0.value))" }.joined(separator: ", ") + "}"
}

/// A JSON object of fields assembled at run time, in their order.
func jsonObject(_ fields: [(String, Any)]) -> String {
    "{" + fields.map { "\(jsonString($0.0)): \(jsonValue($0.1))" }.joined(separator: ", ") + "}"
}

func jsonValue(_ value: Any) -> String {
    switch value {
    case let v as String: return jsonString(v)
    case let v as Bool: return v ? "true" : "false"
    case let v as Int: return "\(v)"
    case let v as Double: return v.isFinite ? "\(v)" : "null"
    case let v as Float: return v.isFinite ? "\(v)" : "null"
    case let v as [Int]: return "[" + v.map(String.init).joined(separator: ", ") + "]"
    case let v as [Double]: return "[" + v.map { jsonValue($0) }.joined(separator: ", ") + "]"
    case let v as [[Int]]: return "[" + v.map { jsonValue($0) }.joined(separator: ", ") + "]"
    case let v as [Any]: return "[" + v.map { jsonValue($0) }.joined(separator: ", ") + "]"
    case let v as RawJSON: return v.text
    case Optional<Any>.none: return "null"
    default: return jsonString("\(value)")
    }
}

/// `json` (compact, as `jsonObject` writes it) re-indented by two spaces per level: the
/// members of objects nested at most `objectDepth` deep each on their own line, and the
/// elements of an array of objects inside them too (one object per line); everything else
/// stays on one line. The text between quotes is copied as is.
func indentedJSON(_ json: String, objectDepth: Int) -> String {
    let text = Array(json)
    var out = "", inString = false, escaped = false
    var broken: [Bool] = []  // per open container: are its members on their own lines?
    var lineStart = false  // just broke a line: the compact text's space after "," goes
    func newline() {
        out += "\n" + String(repeating: "  ", count: broken.count)
        lineStart = true
    }
    for (i, c) in text.enumerated() {
        if inString {
            out.append(c)
            if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
            continue
        }
        if c == " " && lineStart { continue }
        lineStart = false
        switch c {
        case "\"":
            inString = true
            out.append(c)
        case "{", "[":
            out.append(c)
            let next = text[(i + 1)...].first { $0 != " " }
            let breaks = next != "}" && next != "]"
                && (c == "{" ? broken.count < objectDepth : next == "{" && broken.last == true)
            broken.append(breaks)
            if breaks { newline() }
        case "}", "]":
            if broken.removeLast() { newline() }
            out.append(c)
        case ",":
            out.append(c)
            if broken.last == true { newline() }
        default:
            out.append(c)
        }
    }
    return out
}

/// Already-encoded JSON to embed as is.
struct RawJSON { var text: String }

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
        }
    }
    return out + "\""
}
