import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

// MARK: - Errors

/// Why files could not be provided.
public enum DownloadError: Error, CustomStringConvertible, LocalizedError, Equatable {
    /// After trying every mirror, these files are still missing.
    case filesMissing(directory: String, files: [String], attempts: [String])
    /// The target directory cannot be created or written.
    case cannotWrite(directory: String, reason: String)

    public var description: String {
        switch self {
        case .filesMissing(let directory, let files, let attempts):
            var lines = [
                "Missing dataset files in \(directory): \(files.joined(separator: ", "))."
            ]
            if attempts.isEmpty {
                lines.append("No mirror was configured.")
            } else {
                lines.append("Tried:")
                lines += attempts.map { "  - \($0)" }
            }
            lines += [
                "To provide them, either:",
                "  - run `make data` on a machine with network access (or with ../shared/data/mnist present),",
                "  - copy the files (\(files.joined(separator: ", "))) into \(directory), or",
                "  - set MNIST_MIRRORS to URLs or directories that hold them "
                    + "(comma or space separated; a directory path or file:// URL works offline).",
            ]
            return lines.joined(separator: "\n")
        case .cannotWrite(let directory, let reason):
            return "\(directory): cannot write the dataset files: \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

// MARK: - Downloader

/// Fetches dataset files from a list of mirrors, checking each against its known MD5.
///
/// A file is written to a temporary name in the target directory and renamed into place only
/// when its MD5 matches; any failure (unreachable, HTTP error, wrong MD5) moves on to the next
/// mirror. Files already present with the right MD5 are left alone.
public struct Downloader: Sendable {
    /// A file to fetch and its published MD5.
    public struct RemoteFile: Sendable, Hashable {
        public var name: String
        public var md5: String

        public init(name: String, md5: String) {
            self.name = name
            self.md5 = md5
        }
    }

    /// The four MNIST files with the MD5s torchvision checks.
    public static let mnistFiles = [
        RemoteFile(name: "train-images-idx3-ubyte.gz", md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        RemoteFile(name: "train-labels-idx1-ubyte.gz", md5: "d53e105ee54ea40749a09fcbcd1e9432"),
        RemoteFile(name: "t10k-images-idx3-ubyte.gz", md5: "9fb629c4189551a2d022fa330f9573f3"),
        RemoteFile(name: "t10k-labels-idx1-ubyte.gz", md5: "ec29112dd5afa0611ce80d1b7f02629c"),
    ]

    /// torchvision's MNIST mirrors, in its order.
    public static let defaultMirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]

    /// The environment variable that overrides the mirror list.
    public static let mirrorsEnvironmentVariable = "MNIST_MIRRORS"

    /// Base URLs (`http://`, `https://`, `file://`) or local directory paths, tried in order.
    public var mirrors: [String]
    public var files: [RemoteFile]
    /// Seconds before an HTTP request gives up.
    public var timeout: TimeInterval

    public init(mirrors: [String], files: [RemoteFile] = Downloader.mnistFiles, timeout: TimeInterval = 30) {
        self.mirrors = mirrors
        self.files = files
        self.timeout = timeout
    }

    /// The mirror list to use: existing `localDirectories` first (e.g. `../shared/data/mnist`),
    /// then `MNIST_MIRRORS` from `environment` if set, else `configured` if given, else
    /// `defaultMirrors`.
    public static func resolveMirrors(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        configured: [String]? = nil, localDirectories: [URL] = []
    ) -> [String] {
        var isDirectory: ObjCBool = false
        let local = localDirectories.filter {
            FileManager.default.fileExists(atPath: $0.path, isDirectory: &isDirectory) && isDirectory.boolValue
        }.map(\.path)
        let separators = CharacterSet(charactersIn: ", \n\t")
        if let override = environment[mirrorsEnvironmentVariable]?
            .components(separatedBy: separators).filter({ !$0.isEmpty }), !override.isEmpty
        {
            return local + override
        }
        return local + (configured ?? defaultMirrors)
    }

    /// Makes sure every file is in `directory` with its MD5, fetching what is missing.
    ///
    /// - Returns: one line per file saying what was done ("present", "fetched from ...").
    /// - Throws: `DownloadError.filesMissing` listing the files still missing, every failed
    ///   attempt and how to provide them.
    public func ensure(directory: URL) throws -> [String] {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw DownloadError.cannotWrite(directory: directory.path, reason: error.localizedDescription)
        }
        var report: [String] = []
        var attempts: [String] = []
        var missing: [String] = []
        for file in files {
            let destination = directory.appendingPathComponent(file.name)
            if FileManager.default.fileExists(atPath: destination.path) {
                if let digest = try? MD5.hex(fileAt: destination), digest == file.md5 {
                    report.append("\(file.name): present, md5 ok")
                    continue
                }
                attempts.append("\(destination.path): present but its md5 is wrong; fetching it again")
            }
            var fetched = false
            for mirror in mirrors {
                do {
                    try fetch(file, from: mirror, to: destination)
                    report.append("\(file.name): fetched from \(mirror), md5 ok")
                    fetched = true
                    break
                } catch let failure as FetchFailure {
                    attempts.append("\(file.name) from \(mirror): \(failure.reason)")
                }
            }
            if !fetched { missing.append(file.name) }
        }
        guard missing.isEmpty else {
            throw DownloadError.filesMissing(directory: directory.path, files: missing, attempts: attempts)
        }
        return report
    }

    // MARK: - Fetching one file

    private struct FetchFailure: Error {
        var reason: String
    }

    /// Fetches `file` from `mirror` into a temporary file beside `destination`, checks the MD5
    /// and renames it into place. Leaves no temporary file behind on failure.
    private func fetch(_ file: RemoteFile, from mirror: String, to destination: URL) throws {
        let data = try read(file.name, from: mirror)
        let digest = MD5.hex(data)
        guard digest == file.md5 else {
            throw FetchFailure(reason: "md5 mismatch: got \(digest), expected \(file.md5)")
        }
        let temporary = destination.deletingLastPathComponent()
            .appendingPathComponent(".\(file.name).partial-\(UUID().uuidString)")
        do {
            try data.write(to: temporary)
            // rename(2) replaces any existing file atomically.
            guard rename(temporary.path, destination.path) == 0 else {
                throw FetchFailure(reason: "rename failed: \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw FetchFailure(reason: "cannot write \(destination.path): \(error.localizedDescription)")
        }
    }

    /// The bytes of `name` at `mirror`: a directory path, a `file://` URL or an HTTP(S) base URL.
    private func read(_ name: String, from mirror: String) throws -> Data {
        let isRemote = mirror.hasPrefix("http://") || mirror.hasPrefix("https://")
        if !isRemote {
            let directory = mirror.hasPrefix("file://")
                ? URL(string: mirror).map { URL(fileURLWithPath: $0.path) }
                : URL(fileURLWithPath: mirror)
            guard let directory else { throw FetchFailure(reason: "not a valid file URL") }
            let source = directory.appendingPathComponent(name)
            do {
                return try Data(contentsOf: source)
            } catch {
                throw FetchFailure(reason: "cannot read \(source.path): \(error.localizedDescription)")
            }
        }
        let base = mirror.hasSuffix("/") ? mirror : mirror + "/"
        guard let url = URL(string: base + name) else { throw FetchFailure(reason: "not a valid URL") }
        return try httpGet(url)
    }

    /// A blocking HTTP GET with `timeout`; only status 200 counts as success.
    private func httpGet(_ url: URL) throws -> Data {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = timeout * 10
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }
        let outcome = HTTPOutcome()
        let task = session.dataTask(with: url) { data, response, error in
            outcome.finish(data: data, response: response, error: error)
        }
        task.resume()
        let (data, response, error) = outcome.wait()
        if let error {
            throw FetchFailure(reason: "request failed: \(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else {
            throw FetchFailure(reason: "no HTTP response")
        }
        guard http.statusCode == 200 else {
            throw FetchFailure(reason: "HTTP status \(http.statusCode)")
        }
        return data ?? Data()
    }
}

/// The result of one HTTP request, handed from URLSession's queue to the waiting caller.
private final class HTTPOutcome: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private var data: Data?
    private var response: URLResponse?
    private var error: Error?

    func finish(data: Data?, response: URLResponse?, error: Error?) {
        self.data = data
        self.response = response
        self.error = error
        semaphore.signal()
    }

    /// Blocks until `finish`; the semaphore orders the writes before these reads.
    func wait() -> (Data?, URLResponse?, Error?) {
        semaphore.wait()
        return (data, response, error)
    }
}

/// Fetches the MNIST files into `directory` (a no-op when valid files are there); tries
/// `../shared/data/mnist` first when it exists, then `MNIST_MIRRORS`, `mirrors` or
/// torchvision's mirrors. Returns what was done, a line per file.
public func downloadMNIST(into directory: String, mirrors: [String] = []) throws -> [String] {
    let resolved = Downloader.resolveMirrors(configured: mirrors.isEmpty ? nil : mirrors,
                                             localDirectories: [URL(fileURLWithPath: "../shared/data/mnist")])
    return try Downloader(mirrors: resolved).ensure(directory: URL(fileURLWithPath: directory))
}
