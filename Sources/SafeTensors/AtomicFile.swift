import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - AtomicFile

/// Writes whole files so that a reader sees either the old file or the complete new one,
/// never a partial file, even if the process or machine dies mid-write.
///
/// Steps: create `.<name>.tmp-<pid>-<random>` in the destination's directory (same file
/// system, so rename is atomic) with `O_CREAT | O_EXCL`; write all bytes (retrying partial
/// writes and `EINTR`); `fsync` it; close it; `rename` it over the destination; `fsync` the
/// directory so the rename itself is durable. On any failure the temporary file is removed
/// and an `AtomicFileError` naming the path and the system's reason is thrown; the
/// destination is then untouched.
public enum AtomicFile {
    /// Writes `data` to `url` (a file URL) atomically. New files get mode 0644 (minus umask).
    public static func write(_ data: Data, to url: URL) throws {
        guard url.isFileURL else { throw AtomicFileError.notAFileURL(url.absoluteString) }
        let destination = url.path
        let name = url.lastPathComponent
        guard !name.isEmpty, name != "/", !destination.hasSuffix("/") else {
            throw AtomicFileError.notAFileURL(url.absoluteString)
        }
        let directoryPath = url.deletingLastPathComponent().path
        let directory = directoryPath.isEmpty ? "." : directoryPath
        let random = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let temporary = (directory.hasSuffix("/") ? directory : directory + "/")
            + ".\(name).tmp-\(getpid())-\(random)"

        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw AtomicFileError.createTemporaryFile(path: temporary, code: errno)
        }
        var descriptorOpen = true
        var renamed = false
        defer {
            if descriptorOpen { _ = close(descriptor) }
            if !renamed { _ = unlink(temporary) }
        }

        if let code = writeAll(data, to: descriptor) {
            throw AtomicFileError.write(path: temporary, code: code)
        }
        if let code = syncRetryingInterrupts(descriptor) {
            throw AtomicFileError.sync(path: temporary, code: code)
        }
        descriptorOpen = false
        // On Linux and macOS the descriptor is released even when close reports EINTR.
        if close(descriptor) != 0, errno != EINTR {
            throw AtomicFileError.close(path: temporary, code: errno)
        }
        guard rename(temporary, destination) == 0 else {
            throw AtomicFileError.rename(from: temporary, to: destination, code: errno)
        }
        renamed = true

        let directoryDescriptor = open(directory, O_RDONLY | O_CLOEXEC)
        guard directoryDescriptor >= 0 else {
            throw AtomicFileError.syncDirectory(path: directory, code: errno)
        }
        defer { _ = close(directoryDescriptor) }
        // Some file systems cannot fsync a directory (EINVAL); the rename is then as durable
        // as that file system makes it, which is all we can ask for.
        if let code = syncRetryingInterrupts(directoryDescriptor), code != EINVAL {
            throw AtomicFileError.syncDirectory(path: directory, code: code)
        }
    }

    /// Writes every byte, looping over partial writes and `EINTR`; returns errno on failure.
    private static func writeAll(_ data: Data, to descriptor: Int32) -> Int32? {
        data.withUnsafeBytes { raw -> Int32? in
            guard let base = raw.baseAddress else { return nil }  // empty data
            var offset = 0
            while offset < raw.count {
                let chunk = min(raw.count - offset, 1 << 30)
                #if canImport(Darwin)
                let written = Darwin.write(descriptor, base + offset, chunk)
                #elseif canImport(Musl)
                let written = Musl.write(descriptor, base + offset, chunk)
                #else
                let written = Glibc.write(descriptor, base + offset, chunk)
                #endif
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if written == 0 { return EIO }  // no progress and no error: give up rather than spin
                offset += written
            }
            return nil
        }
    }

    private static func syncRetryingInterrupts(_ descriptor: Int32) -> Int32? {
        while fsync(descriptor) != 0 {
            if errno != EINTR { return errno }
        }
        return nil
    }
}

// MARK: - AtomicFileError

/// Why `AtomicFile.write` failed: the step, the path involved and the errno.
public enum AtomicFileError: Error, CustomStringConvertible, LocalizedError, Equatable {
    case notAFileURL(String)
    case createTemporaryFile(path: String, code: Int32)
    case write(path: String, code: Int32)
    case sync(path: String, code: Int32)
    case close(path: String, code: Int32)
    case rename(from: String, to: String, code: Int32)
    case syncDirectory(path: String, code: Int32)

    /// The errno of the failed call (0 for `notAFileURL`).
    public var code: Int32 {
        switch self {
        case .notAFileURL: return 0
        case .createTemporaryFile(_, let code), .write(_, let code), .sync(_, let code),
            .close(_, let code), .rename(_, _, let code), .syncDirectory(_, let code):
            return code
        }
    }

    public var description: String {
        switch self {
        case .notAFileURL(let url):
            return "cannot write \(url): not a path to a file"
        case .createTemporaryFile(let path, let code):
            return "cannot create temporary file \(path): \(AtomicFileError.explain(code))"
        case .write(let path, let code):
            return "cannot write to \(path): \(AtomicFileError.explain(code))"
        case .sync(let path, let code):
            return "cannot fsync \(path): \(AtomicFileError.explain(code))"
        case .close(let path, let code):
            return "cannot close \(path): \(AtomicFileError.explain(code))"
        case .rename(let from, let to, let code):
            return "cannot rename \(from) to \(to): \(AtomicFileError.explain(code))"
        case .syncDirectory(let path, let code):
            return "wrote the file but cannot fsync its directory \(path): \(AtomicFileError.explain(code))"
        }
    }

    public var errorDescription: String? { description }

    /// "No space left on device (ENOSPC)": the system's message and, for common codes, the name.
    public static func explain(_ code: Int32) -> String {
        let message = String(cString: strerror(code))
        let names: [Int32: String] = [
            ENOSPC: "ENOSPC", EACCES: "EACCES", EROFS: "EROFS", ENOENT: "ENOENT", ENOTDIR: "ENOTDIR",
            EISDIR: "EISDIR", EEXIST: "EEXIST", EDQUOT: "EDQUOT", EIO: "EIO", EPERM: "EPERM",
            EXDEV: "EXDEV", EINVAL: "EINVAL", ENAMETOOLONG: "ENAMETOOLONG", EMFILE: "EMFILE",
        ]
        return "\(message) (\(names[code] ?? "errno \(code)"))"
    }
}
