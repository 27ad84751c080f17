import Foundation
import Interop
import Plot
import SafeTensors

/// The run's TensorBoard event file, `events.out.tfevents.<start>.<host>`, kept equal to
/// metrics.jsonl: each record of metrics.jsonl becomes one event at its step —
/// `train/loss` and `lr` per logged step; `train/accuracy`, `train/epoch_loss`,
/// `test/loss`, `test/accuracy` (and `validation/…`, `ema_test/…`, `ema_validation/…`)
/// per evaluation.
///
/// New records are appended at each checkpoint, after metrics.jsonl is written; a kill
/// during an append leaves at most a torn last record, which readers skip. The first sync
/// of a process (a new or resumed run) writes the whole file atomically from the records,
/// so a resumed run's file holds each step once, like metrics.jsonl.
struct TensorBoardLog {
    static let prefix = "events.out.tfevents."
    let url: URL
    /// Records of metrics.jsonl already in the file (nil: not known, rewrite it).
    private var written: Int?

    /// The run directory's event file: the one already there (a resumed run), else a new name.
    init(directory: URL) {
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: directory.path))?
            .filter { $0.hasPrefix(Self.prefix) && !$0.hasSuffix(".tmp") }.sorted().first
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        url = directory.appendingPathComponent(existing ?? "\(Self.prefix)\(Int(Date().timeIntervalSince1970)).\(host)")
    }

    /// Brings the file up to `lines` (metrics.jsonl's records, in order).
    mutating func sync(_ lines: [String]) throws {
        if let written, written <= lines.count, FileManager.default.fileExists(atPath: url.path) {
            guard written < lines.count else { return }
            try append(lines[written...].flatMap(Self.event))
        } else {
            let start = lines.first.flatMap(Self.object).flatMap { ($0["time"] as? NSNumber)?.doubleValue }
                ?? Date().timeIntervalSince1970
            try AtomicFile.write(Data(TensorBoardEvents.fileVersionRecord(wallTime: start) + lines.flatMap(Self.event)), to: url)
        }
        written = lines.count
    }

    /// Appends an image event (`curves` at the end of a run). It is not in metrics.jsonl, so
    /// a resumed run's rewrite leaves it out, and that run's own end adds a new one.
    func appendImage(tag: String, image: Plot.Image, step: Int, png encoded: Data? = nil) throws {
        let png = [UInt8](try encoded ?? PNGEncoder.encode(image))
        try append(TensorBoardEvents.record(wallTime: Date().timeIntervalSince1970, step: step, values: [
            .image(tag: tag, png: png, width: image.width, height: image.height, channels: image.channels),
        ]))
    }

    /// Appends framed records to the end of the file.
    private func append(_ records: [UInt8]) throws {
        guard let handle = FileHandle(forWritingAtPath: url.path) else {
            throw TrainingError.runDirectory("cannot append to \(url.path)")
        }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(records))
        } catch {
            throw TrainingError.runDirectory("cannot append to \(url.path): \(error)")
        }
    }

    static func object(_ line: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }

    /// The metrics.jsonl keys and the TensorBoard tags they become.
    static let tags: [(key: String, tag: String)] = [
        ("train_accuracy", "train/accuracy"), ("train_loss", "train/epoch_loss"),
        ("test_loss", "test/loss"), ("test_accuracy", "test/accuracy"),
        ("validation_loss", "validation/loss"), ("validation_accuracy", "validation/accuracy"),
        ("ema_test_loss", "ema_test/loss"), ("ema_test_accuracy", "ema_test/accuracy"),
        ("ema_validation_loss", "ema_validation/loss"), ("ema_validation_accuracy", "ema_validation/accuracy"),
    ]

    /// One metrics record as a framed event (nothing for a record without a step).
    static func event(_ line: String) -> [UInt8] {
        guard let record = object(line), let step = record["step"] as? Int else { return [] }
        func number(_ key: String) -> Float? {
            guard let n = record[key] as? NSNumber else { return nil }
            let value = n.floatValue
            return value.isFinite ? value : nil
        }
        var values: [TensorBoardEvents.Value] = []
        if record["kind"] as? String == "step" {
            if let loss = number("loss") { values.append(.scalar(tag: "train/loss", value: loss)) }
            if let lr = number("lr") { values.append(.scalar(tag: "lr", value: lr)) }
        } else {
            for (key, tag) in tags { if let v = number(key) { values.append(.scalar(tag: tag, value: v)) } }
        }
        guard !values.isEmpty else { return [] }
        let time = (record["time"] as? NSNumber)?.doubleValue ?? Date().timeIntervalSince1970
        return TensorBoardEvents.record(wallTime: time, step: step, values: values)
    }
}
