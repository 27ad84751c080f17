import Foundation

/// The published MD5 sums of the datasets' files, to check before training that the files
/// are the data a result will be compared against.
///
/// Each file may be present gzip'd (`NAME.gz`) or raw (`NAME`). Accepted sums:
/// - MNIST `.gz`: torchvision's list (`Downloader.mnistFiles`); raw: the decompressed
///   content of those files.
/// - Fashion-MNIST `.gz`: Zalando's published files (torchvision's list) and Debian's
///   `dataset-fashion-mnist`, which recompressed the same content; raw: that content.
/// - KMNIST: no list here; its files are reported as not verified.
public enum DatasetChecksums {
    /// file name (without `.gz`) → accepted MD5s of the `.gz` file and of the raw file.
    public struct Sums: Sendable {
        public var gz: Set<String>
        public var raw: Set<String>
    }

    public static let known: [String: [String: Sums]] = [
        "mnist": [
            "train-images-idx3-ubyte": Sums(gz: ["f68b3c2dcbeaaa9fbdd348bbdeb94873"], raw: ["6bbc9ace898e44ae57da46a324031adb"]),
            "train-labels-idx1-ubyte": Sums(gz: ["d53e105ee54ea40749a09fcbcd1e9432"], raw: ["a25bea736e30d166cdddb491f175f624"]),
            "t10k-images-idx3-ubyte": Sums(gz: ["9fb629c4189551a2d022fa330f9573f3"], raw: ["2646ac647ad5339dbf082846283269ea"]),
            "t10k-labels-idx1-ubyte": Sums(gz: ["ec29112dd5afa0611ce80d1b7f02629c"], raw: ["27ae3e4e09519cfbb04c329615203637"]),
        ],
        "fashion-mnist": [
            "train-images-idx3-ubyte": Sums(gz: ["8d4fb7e6c68d591d4c3dfef9ec88bf0d", "cf8536b0aa1a6ac5fa3f23001093305c"],
                                            raw: ["f4a8712d7a061bf5bd6d2ca38dc4d50a"]),
            "train-labels-idx1-ubyte": Sums(gz: ["25c81989df183df01b3e8a0aad5dffbe", "10bea18fdb374794d4bb42e356e600c9"],
                                            raw: ["9018921c3c673c538a1fc5bad174d6f9"]),
            "t10k-images-idx3-ubyte": Sums(gz: ["bef4ecab320f06d8554ea6380940ec79", "f78720b4224f21cce2f2ccf2d7a94c9a"],
                                           raw: ["8181f5470baa50b63fa0f6fddb340f0a"]),
            "t10k-labels-idx1-ubyte": Sums(gz: ["bb300cfdad3c16e7a12a480ee83cd310", "0d30e22e447f3c33dab9ed536400ac01"],
                                           raw: ["15d484375f8d13e6eb1aabb0c3f46965"]),
        ],
    ]

    /// The outcome of checking one dataset directory.
    public enum Outcome: Sendable, Equatable {
        case verified
        /// No published sums for this dataset.
        case unknownDataset
        /// Files whose sums are not the published ones: path, its MD5, the accepted ones.
        case mismatch([(path: String, md5: String, expected: [String])])

        public static func == (a: Outcome, b: Outcome) -> Bool {
            switch (a, b) {
            case (.verified, .verified), (.unknownDataset, .unknownDataset): return true
            case let (.mismatch(x), .mismatch(y)):
                return x.map { "\($0.path) \($0.md5)" } == y.map { "\($0.path) \($0.md5)" }
            default: return false
            }
        }
    }

    /// Checks the four files of `dataset` in `directory` (whichever of `NAME.gz` and `NAME`
    /// the loader will read: the `.gz` when both exist). Missing files are the loader's to
    /// report and are skipped here.
    public static func verify(directory: URL, dataset: String) throws -> Outcome {
        guard let table = known[dataset] else { return .unknownDataset }
        var mismatches: [(path: String, md5: String, expected: [String])] = []
        for split in Split.allCases {
            let names = split.fileNames
            for name in [names.images, names.labels] {
                guard let sums = table[name] else { continue }
                let gz = directory.appendingPathComponent(name + ".gz"), raw = directory.appendingPathComponent(name)
                let (url, accepted): (URL, Set<String>)
                if FileManager.default.fileExists(atPath: gz.path) { (url, accepted) = (gz, sums.gz) }
                else if FileManager.default.fileExists(atPath: raw.path) { (url, accepted) = (raw, sums.raw) }
                else { continue }
                let md5 = try MD5.hex(fileAt: url)
                if !accepted.contains(md5) { mismatches.append((url.path, md5, accepted.sorted())) }
            }
        }
        return mismatches.isEmpty ? .verified : .mismatch(mismatches)
    }
}
