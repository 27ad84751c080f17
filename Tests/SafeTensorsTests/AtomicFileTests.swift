import Foundation
import Testing
import TestSupport
@testable import SafeTensors

// MARK: - AtomicFile

@Suite struct AtomicFileTests {
    @Test func writesAndReplacesWithoutLeavingTemporaries() throws {
        let directory = try makeTemporaryDirectory("atomic-file")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("config.json")
        try AtomicFile.write(Data("first".utf8), to: url)
        #expect(try Data(contentsOf: url) == Data("first".utf8))
        let big = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try AtomicFile.write(big, to: url)
        #expect(try Data(contentsOf: url) == big)
        try AtomicFile.write(Data(), to: url)
        #expect(try Data(contentsOf: url).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["config.json"])
    }

    @Test func missingDirectoryFailsWithENOENT() throws {
        let directory = try makeTemporaryDirectory("atomic-file")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("missing/out.bin")
        do {
            try AtomicFile.write(Data([1]), to: url)
            Issue.record("write into a missing directory succeeded")
        } catch let error as AtomicFileError {
            #expect(error.code == ENOENT)
            guard case .createTemporaryFile(let path, _) = error else {
                Issue.record("expected createTemporaryFile, got \(error)")
                return
            }
            #expect(path.hasPrefix(directory.path + "/missing/.out.bin.tmp-"))
            #expect(error.description.hasSuffix("No such file or directory (ENOENT)"))
        }
    }

    /// Root ignores permission bits, so "read-only" is a parent that is a regular file.
    @Test func parentIsAFileFailsWithENOTDIRAndKeepsNothing() throws {
        let directory = try makeTemporaryDirectory("atomic-file")
        defer { try? FileManager.default.removeItem(at: directory) }
        let blocker = directory.appendingPathComponent("blocker")
        try Data("x".utf8).write(to: blocker)
        let error = #expect(throws: AtomicFileError.self) {
            try AtomicFile.write(Data([1, 2, 3]), to: blocker.appendingPathComponent("out.bin"))
        }
        #expect(error?.code == ENOTDIR)
        #expect(error?.description.contains(blocker.path + "/.out.bin.tmp-") == true)
        #expect(error?.description.hasSuffix("Not a directory (ENOTDIR)") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["blocker"])
    }

    @Test func renameOntoADirectoryFailsAndRemovesTemporary() throws {
        let directory = try makeTemporaryDirectory("atomic-file")
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("taken")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)
        try Data("keep".utf8).write(to: target.appendingPathComponent("inside"))
        let error = #expect(throws: AtomicFileError.self) { try AtomicFile.write(Data([1]), to: target) }
        guard case .rename(_, let to, let code) = error else {
            Issue.record("expected rename failure, got \(String(describing: error))")
            return
        }
        #expect(to == target.path)
        #expect(code == EISDIR)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["taken"])
        #expect(try Data(contentsOf: target.appendingPathComponent("inside")) == Data("keep".utf8))
    }

    /// A 64 KiB tmpfs fills up: the write fails with ENOSPC, the old file is intact and no
    /// temporary remains. Skipped (with a printed reason) where mounting is not permitted.
    @Test func fullFileSystemFailsWithENOSPCAndKeepsOldFile() throws {
        let mountPoint = try makeTemporaryDirectory("atomic-file-tmpfs")
        defer { try? FileManager.default.removeItem(at: mountPoint) }
        guard Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mountPoint.path]) == 0 else {
            print("SKIPPED fullFileSystemFailsWithENOSPCAndKeepsOldFile: cannot mount a tmpfs here")
            return
        }
        defer { _ = Self.run("/bin/umount", [mountPoint.path]) }
        let url = mountPoint.appendingPathComponent("checkpoint.safetensors")
        try AtomicFile.write(Data("old".utf8), to: url)
        let error = #expect(throws: AtomicFileError.self) {
            try AtomicFile.write(Data(count: 1 << 20), to: url)
        }
        #expect(error?.code == ENOSPC)
        guard case .write(let path, _) = error else {
            Issue.record("expected write failure, got \(String(describing: error))")
            return
        }
        #expect(path.hasPrefix(mountPoint.path + "/.checkpoint.safetensors.tmp-"))
        #expect(error?.description.hasSuffix("No space left on device (ENOSPC)") == true)
        #expect(try Data(contentsOf: url) == Data("old".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: mountPoint.path) == ["checkpoint.safetensors"])
    }

    static func run(_ executable: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        } catch {
            return -1
        }
    }
}
