import Foundation
import Plot

/// What `check_png.py` (an independent decoder using only Python's zlib and struct) reports.
struct PNGCheck: Decodable {
    var ok: Bool
    var error: String?
    var width: Int?
    var height: Int?
    var channels: Int?
    var distinct: Int?
    var min: Int?
    var max: Int?
    var pixels: [String: [Int]]?
    var raw: [Int]?

    func pixel(_ x: Int, _ y: Int) -> [Int]? { pixels?["\(x),\(y)"] }
}

enum CheckerError: Error, CustomStringConvertible {
    case unreadableOutput(String, status: Int32)

    var description: String {
        switch self {
        case let .unreadableOutput(output, status):
            return "check_png.py exited with \(status) and printed no JSON: \(output)"
        }
    }
}

enum PNGChecker {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("check_png.py")

    /// Runs `python3 check_png.py file [--pixel x,y]... [--dump]`.
    static func check(_ file: URL, pixels: [(Int, Int)] = [], dump: Bool = false) throws -> PNGCheck {
        var arguments = ["python3", script.path, file.path]
        for (x, y) in pixels { arguments += ["--pixel", "\(x),\(y)"] }
        if dump { arguments.append("--dump") }
        let (status, output) = try run(arguments)
        guard let data = output.data(using: .utf8),
              let result = try? JSONDecoder().decode(PNGCheck.self, from: data)
        else { throw CheckerError.unreadableOutput(output, status: status) }
        return result
    }

    /// Runs a program found on PATH; returns its exit status and standard output.
    static func run(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Whether `pngcheck` (Debian package `pngcheck`) is installed.
    static var pngcheckAvailable: Bool {
        ["/usr/bin/pngcheck", "/usr/local/bin/pngcheck", "/opt/homebrew/bin/pngcheck"]
            .contains { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
