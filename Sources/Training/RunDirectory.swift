import Foundation
import SafeTensors

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A run directory held by one process for the whole run.
///
/// Ownership is an exclusive `flock` on `.lock` inside the directory, taken before anything
/// in it is read or written and released when the process ends (also by `kill -9`: the
/// kernel drops the lock with the descriptor). A second process asking for the same
/// directory is refused with the holder's PID. New directories are made with `mkdir`,
/// which fails when the name exists, so two runs started in the same millisecond still get
/// two directories.
public final class RunDirectory {
    public static let lockFile = ".lock"

    public let url: URL
    /// Whether this process made the directory (a failed new run then removes it).
    public let created: Bool
    private let descriptor: Int32

    private init(url: URL, created: Bool, descriptor: Int32) {
        self.url = url
        self.created = created
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    // MARK: - Opening

    /// A new, uniquely named directory `<parent>/<name>-<yyyyMMdd'T'HHmmss.SSS>` (with
    /// `-2`, `-3`, ... when that name is taken), made and locked by this process.
    public static func createUnique(in parent: URL, name: String, date: Date = Date()) throws -> RunDirectory {
        try FileProblem.makeDirectories(parent, what: "output_dir")
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss.SSS"
        let stamp = formatter.string(from: date)
        for attempt in 1...10_000 {
            let candidate = parent.appendingPathComponent(attempt == 1 ? "\(name)-\(stamp)" : "\(name)-\(stamp)-\(attempt)")
            if mkdir(candidate.path, 0o755) == 0 {
                return try lock(candidate, created: true, option: "output_dir").recordOwner()
            }
            guard errno == EEXIST else {
                throw TrainingError.runDirectory(FileProblem.describe(candidate.path, "cannot create the run directory", errno))
            }
        }
        throw TrainingError.runDirectory("\(parent.path): cannot find a free run directory name for \(name)-\(stamp)")
    }

    /// `--out DIR` for a new run: made if missing, locked, and refused when it already
    /// holds anything but an earlier lock file (a run of ours, or someone else's files).
    public static func openForNewRun(_ url: URL) throws -> RunDirectory {
        guard !url.path.isEmpty else {
            throw TrainingError.runDirectory("--out: the path is empty; give a directory for the run")
        }
        var isDirectory: ObjCBool = false
        let existed = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        if existed && !isDirectory.boolValue {
            throw TrainingError.runDirectory("--out \(url.path): exists and is not a directory; give a directory for the run")
        }
        if !existed { try FileProblem.makeDirectories(url, what: "--out") }
        let directory = try lock(url, created: !existed, option: "--out")
        let contents = directory.contents()
        if contents.contains(Checkpoint.stateFile) || contents.contains(Checkpoint.configFile) {
            throw TrainingError.runDirectory("--out \(url.path): already holds a run; continue it with --resume \(url.path) "
                + "or choose another --out")
        }
        if !contents.isEmpty {
            let shown = contents.prefix(5).joined(separator: ", ") + (contents.count > 5 ? ", and \(contents.count - 5) more" : "")
            throw TrainingError.runDirectory("--out \(url.path): the directory is not empty (\(shown)) and holds no run of "
                + "mnist-train; choose a new or empty directory")
        }
        return directory.recordOwner()
    }

    /// The `config.json` of the run in `url`, or the refusal: `--resume` takes the
    /// directory of an earlier run.
    public static func savedConfig(of url: URL) throws -> URL {
        guard !url.path.isEmpty else {
            throw TrainingError.runDirectory("--resume: the path is empty; give the directory of an earlier run")
        }
        let saved = url.appendingPathComponent(Checkpoint.configFile)
        guard FileManager.default.fileExists(atPath: saved.path) else {
            throw TrainingError.runDirectory("\(url.path): not a run directory (no \(Checkpoint.configFile)); "
                + "--resume takes the directory of an earlier run")
        }
        return saved
    }

    /// `--resume DIR`: the directory of an earlier run (`savedConfig(of:)` checked it), locked.
    public static func openForResume(_ url: URL) throws -> RunDirectory {
        try lock(url, created: false, option: "--resume").recordOwner()
    }

    /// Takes the exclusive lock on `<url>/.lock` and records this process in it.
    static func lock(_ url: URL, created: Bool, option: String) throws -> RunDirectory {
        let path = url.appendingPathComponent(lockFile).path
        // Read-only: flock needs no write access, and a file held open for writing would
        // keep the file system from being remounted read-only under a running job.
        let fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TrainingError.runDirectory(FileProblem.describe(path, "\(option): cannot open the lock file", errno))
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            guard code == EWOULDBLOCK else {
                throw TrainingError.runDirectory(FileProblem.describe(path, "\(option): cannot lock the run directory", code))
            }
            let holder = String(decoding: buffer.prefix(max(0, n)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw TrainingError.runDirectory("\(option) \(url.path): in use by another mnist-train process "
                + "(\(holder.isEmpty ? "pid unknown" : holder)); wait for it to end or choose another directory")
        }
        return RunDirectory(url: url, created: created, descriptor: fd)
    }

    /// Writes this process into the lock file, for the message a second opener gets; done
    /// once the directory is accepted, so that a refused run changes nothing in it.
    func recordOwner() -> RunDirectory {
        let stamp = ISO8601DateFormatter().string(from: Date())
        let record = Array("pid \(getpid()), started \(stamp)\n".utf8)
        let writer = open(url.appendingPathComponent(Self.lockFile).path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        if writer >= 0 {
            _ = write(writer, record, record.count)
            close(writer)
        }
        return self
    }

    // MARK: - Contents

    /// The entries of the directory other than the lock file and temporaries a killed
    /// write left behind (`.NAME.tmp-*`), sorted.
    public func contents() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.filter { $0 != Self.lockFile && !Self.isTemporary($0) }.sorted()
    }

    static func isTemporary(_ name: String) -> Bool { name.hasPrefix(".") && name.contains(".tmp-") }

    /// Removes `.NAME.tmp-*` files that a killed process left behind.
    public func removeStaleTemporaries() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        for name in names where Self.isTemporary(name) {
            try? FileManager.default.removeItem(at: url.appendingPathComponent(name))
        }
    }

    /// After a new run failed before its first checkpoint: removes the files it wrote and,
    /// when this process made the directory, the directory itself, so that no half-made
    /// run is left for a script to find.
    public func removeFailedRun(files: [String]) {
        let fm = FileManager.default
        for name in files { try? fm.removeItem(at: url.appendingPathComponent(name)) }
        removeStaleTemporaries()
        if created && contents().isEmpty {
            try? fm.removeItem(at: url.appendingPathComponent(Self.lockFile))
            _ = rmdir(url.path)
        }
    }
}

/// File-system failures as one line: the path, what was tried, and the system's reason.
public enum FileProblem {
    /// "`path`: `action`: No such file or directory (ENOENT)".
    public static func describe(_ path: String, _ action: String, _ code: Int32) -> String {
        "\(path): \(action): \(AtomicFileError.explain(code))"
    }

    /// `mkdir -p` with each failure named: which component could not be made and why
    /// (`--out a/b` where `a` is a file: "a: is not a directory (ENOTDIR)").
    public static func makeDirectories(_ url: URL, what option: String) throws {
        var path = ""
        for component in url.standardizedFileURL.pathComponents {
            path = path.isEmpty ? component : (path == "/" ? "/" + component : path + "/" + component)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                guard isDirectory.boolValue else {
                    throw TrainingError.runDirectory("\(option) \(url.path): cannot create the directory: \(path) is a file, "
                        + "not a directory (ENOTDIR)")
                }
                continue
            }
            if mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw TrainingError.runDirectory("\(option) \(url.path): cannot create the directory \(path): "
                    + AtomicFileError.explain(errno))
            }
        }
    }

    /// Why a file could not be read, in words ("is a directory (EISDIR); expected a file").
    public struct ReadFailure: Error, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    /// Reads a whole regular file; a failure says why in one phrase without the path
    /// (a directory, a missing file, no permission), for the caller to name the option.
    public static func read(_ url: URL) throws(ReadFailure) -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ReadFailure(reason: AtomicFileError.explain(ENOENT))
        }
        if isDirectory.boolValue { throw ReadFailure(reason: "is a directory (EISDIR); expected a file") }
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReadFailure(reason: "cannot open: " + AtomicFileError.explain(errno)) }
        defer { close(fd) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw ReadFailure(reason: "cannot read: " + AtomicFileError.explain(errno))
            }
            if n == 0 { break }
            data.append(buffer, count: n)
        }
        return data
    }
}
