import Foundation
import MNISTData
import Testing
import TestSupport

// MARK: - MD5

@Suite struct MD5Tests {
    /// RFC 1321's test suite, plus inputs that straddle the 56- and 64-byte padding edges.
    @Test func knownVectors() {
        let vectors: [(String, String)] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
             "d174ab98d277d9f5a5611c2c9f419d9f"),
            (String(repeating: "1234567890", count: 8), "57edf4a22be3c955ac49da2e2107b67a"),
            ("The quick brown fox jumps over the lazy dog", "9e107d9d372bb6826bd81d3542a419d6"),
        ]
        for (input, digest) in vectors {
            #expect(MD5.hex(Data(input.utf8)) == digest, "md5(\"\(input)\")")
        }
    }

    /// Feeding in pieces gives the same digest as feeding at once.
    @Test func incrementalUpdatesMatch() {
        let bytes = (0..<1000).map { UInt8(($0 * 31) % 251) }
        let whole = MD5.hex(Data(bytes))
        for pieceSize in [1, 7, 63, 64, 65, 200] {
            var md5 = MD5()
            var start = 0
            while start < bytes.count {
                let end = min(start + pieceSize, bytes.count)
                md5.update(Data(bytes[start..<end]))
                start = end
            }
            #expect(md5.hexDigest() == whole, "piece size \(pieceSize)")
        }
    }

    @Test func realFilesMatchTorchvisionDigests() throws {
        for file in Downloader.mnistFiles {
            let url = Shared.mnistDirectory.appendingPathComponent(file.name)
            #expect(try MD5.hex(fileAt: url) == file.md5, "\(file.name)")
        }
    }
}

// MARK: - A local HTTP server

/// `python3 -m http.server` on 127.0.0.1 serving `directory`, on a port it chooses.
final class LocalHTTPServer {
    let process = Process()
    let port: Int
    var baseURL: String { "http://127.0.0.1:\(port)/" }

    init(serving directory: URL) throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", "0",
                             "--directory", directory.path]
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // It prints "Serving HTTP on 127.0.0.1 port 43567 (http://127.0.0.1:43567/) ..." once listening.
        var text = ""
        var found: Int?
        let deadline = Date().addingTimeInterval(15)
        while found == nil, Date() < deadline {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if let range = text.range(of: "port ") {
                found = Int(text[range.upperBound...].prefix { $0.isNumber })
            }
        }
        guard let found else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw ServerError(message: "http.server did not report its port; output: \(text)")
        }
        port = found
    }

    /// SIGKILL by process id: the child inherits the test runner's blocked-signal mask, so a
    /// SIGTERM (`Process.terminate`) can stay pending forever.
    deinit { stop() }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    struct ServerError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

// MARK: - Downloader

@Suite(.serialized) struct DownloaderTests {
    /// Files in `directory` whose names mark them as temporaries.
    func partialFiles(in directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".partial") }
    }

    @Test func downloadsAndVerifiesOverHTTPThenDoesNothing() throws {
        let served = try makeTemporaryDirectory("served")
        for file in Downloader.mnistFiles {
            try FileManager.default.copyItem(
                at: Shared.mnistDirectory.appendingPathComponent(file.name),
                to: served.appendingPathComponent(file.name))
        }
        let server = try LocalHTTPServer(serving: served)
        let target = try makeTemporaryDirectory("target").appendingPathComponent("mnist")
        let downloader = Downloader(mirrors: [server.baseURL], timeout: 20)
        let report = try downloader.ensure(directory: target)
        #expect(report.count == 4)
        #expect(report.allSatisfy { $0.contains("fetched from \(server.baseURL)") }, "\(report)")
        for file in Downloader.mnistFiles {
            #expect(try MD5.hex(fileAt: target.appendingPathComponent(file.name)) == file.md5)
        }
        #expect(try partialFiles(in: target).isEmpty)
        // The downloaded directory loads as a dataset.
        #expect(try Dataset.load(directory: target, split: .test).count == 10000)

        // Second run: everything present, nothing fetched even with no reachable mirror.
        let offline = Downloader(mirrors: ["http://127.0.0.1:1/"], timeout: 5)
        let again = try offline.ensure(directory: target)
        #expect(again.allSatisfy { $0.hasSuffix("present, md5 ok") }, "\(again)")
    }

    @Test func corruptedMirrorIsReportedAndTheNextOneUsed() throws {
        let labels = Downloader.mnistFiles.filter { $0.name.contains("labels") }
        let corrupt = try makeTemporaryDirectory("corrupt")
        let good = try makeTemporaryDirectory("good")
        for file in labels {
            var bytes = try Data(contentsOf: Shared.mnistDirectory.appendingPathComponent(file.name))
            try bytes.write(to: good.appendingPathComponent(file.name))
            bytes[bytes.count / 2] ^= 0x55
            try bytes.write(to: corrupt.appendingPathComponent(file.name))
        }
        let badServer = try LocalHTTPServer(serving: corrupt)
        let goodServer = try LocalHTTPServer(serving: good)
        let target = try makeTemporaryDirectory("target")

        // Corrupt mirror alone: md5 mismatch reported, nothing (not even a partial file) left.
        let onlyBad = Downloader(mirrors: [badServer.baseURL], files: labels, timeout: 20)
        do {
            _ = try onlyBad.ensure(directory: target)
            Issue.record("a corrupted mirror must not succeed")
        } catch let error as DownloadError {
            guard case .filesMissing(_, let files, let attempts) = error else {
                Issue.record("unexpected \(error)"); return
            }
            #expect(files == labels.map(\.name))
            #expect(attempts.count == 2)
            #expect(attempts.allSatisfy { $0.contains("md5 mismatch") }, "\(attempts)")
            #expect(attempts[0].contains("expected \(labels[0].md5)"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.path).isEmpty)

        // Corrupt mirror first, good one second: the second is used.
        let both = Downloader(mirrors: [badServer.baseURL, goodServer.baseURL], files: labels, timeout: 20)
        let report = try both.ensure(directory: target)
        #expect(report.allSatisfy { $0.contains("fetched from \(goodServer.baseURL)") }, "\(report)")
        #expect(try partialFiles(in: target).isEmpty)
        for file in labels {
            #expect(try MD5.hex(fileAt: target.appendingPathComponent(file.name)) == file.md5)
        }
    }

    @Test func unreachableMirrorGivesOneClearMessage() throws {
        let target = try makeTemporaryDirectory("unreachable")
        let downloader = Downloader(mirrors: ["http://127.0.0.1:1/"], timeout: 5)
        do {
            _ = try downloader.ensure(directory: target)
            Issue.record("an unreachable mirror must not succeed")
        } catch let error as DownloadError {
            let message = error.description
            for file in Downloader.mnistFiles {
                #expect(message.contains(file.name))
            }
            #expect(message.contains(target.path))
            #expect(message.contains("http://127.0.0.1:1/"))
            #expect(message.contains("make data"))
            #expect(message.contains("MNIST_MIRRORS"))
        }
        #expect(try partialFiles(in: target).isEmpty)
    }

    @Test func localDirectoryAndFileURLMirrors() throws {
        let labels = Downloader.mnistFiles.filter { $0.name.contains("labels") }
        for mirror in [Shared.mnistDirectory.path, Shared.mnistDirectory.absoluteString] {
            let target = try makeTemporaryDirectory("local")
            let report = try Downloader(mirrors: ["/nonexistent/mirror", mirror], files: labels).ensure(directory: target)
            #expect(report.count == 2)
            #expect(report.allSatisfy { $0.contains("fetched from \(mirror)") }, "\(report)")
        }
    }

    @Test func wrongExistingFileIsReplaced() throws {
        let labels = [Downloader.mnistFiles[3]]
        let target = try makeTemporaryDirectory("replace")
        try Data("garbage".utf8).write(to: target.appendingPathComponent(labels[0].name))
        let report = try Downloader(mirrors: [Shared.mnistDirectory.path], files: labels).ensure(directory: target)
        #expect(report == ["\(labels[0].name): fetched from \(Shared.mnistDirectory.path), md5 ok"])
        #expect(try MD5.hex(fileAt: target.appendingPathComponent(labels[0].name)) == labels[0].md5)
    }

    @Test func mirrorResolution() throws {
        let local = Shared.mnistDirectory
        let missing = URL(fileURLWithPath: "/nonexistent/mnist")
        #expect(Downloader.resolveMirrors(environment: [:], localDirectories: [missing])
            == Downloader.defaultMirrors)
        #expect(Downloader.resolveMirrors(environment: [:], configured: ["http://a/"], localDirectories: [local])
            == [local.path, "http://a/"])
        #expect(Downloader.resolveMirrors(
            environment: ["MNIST_MIRRORS": "http://x/, file:///y  /z"], configured: ["http://a/"])
            == ["http://x/", "file:///y", "/z"])
    }
}
