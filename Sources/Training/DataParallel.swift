import Autograd
import Distributed
import Foundation
import MNISTData
import NN
import SafeTensors
import Seeded

/// What a training step adds under `mpirun -np N` (Horovod's and DDP's recipe):
///
/// - every rank takes its slice of each global batch (`DataLoader.Shard`: the same seeded
///   order and augmentation draws as one process, so the samples of a step are exactly a
///   single-process run's);
/// - after `backward()` each rank's gradients, scaled by its share of the batch
///   (`local count / global count`, so their sum is the whole batch's mean gradient), go into
///   one flat buffer with the step's loss sum, correct count and a stop flag, and one
///   all-reduce sums them (`ProcessGroup.allReduceSum`, in rank order with
///   `deterministic_reduce`);
/// - batch norm normalises with each rank's own batch statistics, as DDP does; the running
///   statistics are rank 0's, broadcast after every step (DDP's `broadcast_buffers`), so
///   every rank evaluates and saves the same model;
/// - evaluation is split over the ranks and its counts summed;
/// - rank 0 writes the run directory; the dropout generators of the other ranks are
///   gathered into its checkpoint (`ranks.<r>.<name>`), so a resumed job draws the same masks.
///
/// With a single process every method is the identity and costs nothing.
final class DataParallel {
    let group: ProcessGroup
    let deterministic: Bool
    /// The flat gradient buffer: every parameter's gradient, then the step's extras.
    private let buffer: UnsafeMutableBufferPointer<Float>
    /// `ranks × buffer.count` floats for the deterministic reduction (empty otherwise).
    private let scratch: UnsafeMutableBufferPointer<Float>
    private let parameterCount: Int
    static let extraCount = 3  // loss sum, correct count, stop flag

    init(group: ProcessGroup, deterministic: Bool, parameters: [Tensor]) {
        self.group = group
        self.deterministic = deterministic
        parameterCount = group.isDistributed ? parameters.reduce(0) { $0 + $1.count } : 0
        let count = group.isDistributed ? parameterCount + Self.extraCount : 0
        buffer = .allocate(capacity: count)
        scratch = .allocate(capacity: deterministic ? group.size * count : 0)
    }

    deinit {
        buffer.deallocate()
        scratch.deallocate()
    }

    var isDistributed: Bool { group.isDistributed }
    var shard: DataLoader.Shard { DataLoader.Shard(index: group.rank, count: group.size) }

    /// The whole batch's step: sums every rank's scaled gradients into every rank's `grad`
    /// (created where a rank computed none) and returns the summed extras.
    ///
    /// - Parameters:
    ///   - share: this rank's samples over the global batch's.
    ///   - lossSum: this rank's loss × its sample count.
    func reduce(parameters: [Tensor], share: Float, lossSum: Float, correct: Int, stop: Bool) throws
        -> (lossSum: Float, correct: Int, stop: Bool)
    {
        guard isDistributed, let base = buffer.baseAddress else { return (lossSum, correct, stop) }
        precondition(parameters.reduce(0) { $0 + $1.count } == parameterCount,
                     "DataParallel.reduce: the parameters are not the \(parameterCount) values the buffer was made for")
        var offset = 0
        for p in parameters {
            let n = p.count
            if let grad = p.grad {
                let g = grad.storage.pointer
                for i in 0..<n { base[offset + i] = g[i] * share }
            } else {
                (base + offset).update(repeating: 0, count: n)
            }
            offset += n
        }
        base[offset] = lossSum
        base[offset + 1] = Float(correct)
        base[offset + 2] = stop ? 1 : 0
        try group.allReduceSum(buffer, deterministic: deterministic, scratch: scratch)
        offset = 0
        for p in parameters {
            let n = p.count
            if p.grad == nil { p.grad = Tensor.zeros(shape: p.shape) }
            p.grad!.storage.pointer.update(from: base + offset, count: n)
            offset += n
        }
        return (base[offset], Int(base[offset + 1].rounded()), base[offset + 2] > 0)
    }

    /// Rank 0's persistent float buffers (batch norm's running statistics) on every rank,
    /// in one broadcast.
    func broadcastBuffers(of model: Module) throws {
        guard isDistributed else { return }
        var floats: [Float] = []
        let buffers = model.namedBuffers().map(\.buffer)
        for buffer in buffers {
            if case let .float32(values) = buffer.values { floats += values }
        }
        guard !floats.isEmpty else { return }
        try floats.withUnsafeMutableBufferPointer { try group.broadcast($0) }
        var offset = 0
        for buffer in buffers {
            guard case let .float32(values) = buffer.values else { continue }
            buffer.values = .float32(Array(floats[offset..<(offset + values.count)]))
            offset += values.count
        }
    }

    /// This rank's share of `dataset` for an evaluation: contiguous, in rank order.
    func evaluationShare(of dataset: Dataset) throws -> Dataset {
        guard isDistributed else { return dataset }
        return try dataset.samples(shard.range(of: dataset.count))
    }

    /// The whole dataset's evaluation from every rank's share: counts, loss and confusion
    /// summed. The per-sample lists stay this rank's own; the time is the slowest rank's.
    func reduce(_ evaluation: Evaluation) throws -> Evaluation {
        guard isDistributed else { return evaluation }
        var values = [Double(evaluation.count), Double(evaluation.correct), evaluation.loss * Double(evaluation.count)]
            + evaluation.confusion.flatMap { $0.map(Double.init) }
        try group.allReduceSum(&values)
        var seconds = [evaluation.seconds]
        try group.allReduceMax(&seconds)
        var result = evaluation
        result.count = Int(values[0])
        result.correct = Int(values[1])
        result.loss = result.count > 0 ? values[2] / Double(result.count) : 0
        let k = evaluation.confusion.count
        result.confusion = (0..<k).map { row in (0..<k).map { Int(values[3 + row * k + $0]) } }
        result.seconds = seconds[0]
        return result
    }

    /// Runs `body` on rank 0, then on the other ranks (so that rank 0 may fetch files the
    /// others then read), and turns a failure on any rank into an error on every rank: the
    /// failing rank throws its own (`rankFailed`), the others `peerFailed`, and the job ends
    /// in order, rank 0 removing a new run's directory, instead of being aborted.
    func inTurn<T>(_ what: String, _ body: () throws -> T) throws -> T {
        guard isDistributed else { return try body() }
        var result: T?
        var failure: Error?
        if group.isRoot {
            do { result = try body() } catch { failure = error }
        }
        var rootFailed = [failure == nil ? 0.0 : 1]
        try group.allReduceSum(&rootFailed)
        if rootFailed[0] > 0 {
            if let failure { throw TrainingError.rankFailed(rank: 0, ranks: group.size, host: group.processorName, "\(failure)") }
            throw TrainingError.peerFailed("rank 0 could not \(what)")
        }
        if !group.isRoot {
            do { result = try body() } catch { failure = error }
        }
        try agree(what, failure: failure)
        return result!
    }

    /// Every rank says whether it failed (`failure`); if any did, every rank throws: the
    /// failing ones their own error (`rankFailed`), the others `peerFailed`. Collective.
    func agree(_ what: String, failure: Error?) throws {
        guard isDistributed else {
            if let failure { throw failure }
            return
        }
        var failed = [Double](repeating: 0, count: group.size)
        if failure != nil { failed[group.rank] = 1 }
        try group.allReduceSum(&failed)
        if let first = failed.firstIndex(where: { $0 > 0 }) {
            if let failure {
                throw TrainingError.rankFailed(rank: group.rank, ranks: group.size, host: group.processorName, "\(failure)")
            }
            let count = failed.filter { $0 > 0 }.count
            throw TrainingError.peerFailed("rank \(first) of \(group.size)" + (count > 1 ? " (and \(count - 1) more)" : "")
                + " could not \(what); its own message above says why")
        }
    }

    /// Checks that every rank loaded the same data: the sizes of the splits and a checksum
    /// of their images and labels (CRC-32) must agree, or the ranks would take different
    /// steps (and different collectives). Collective; throws on every rank on a mismatch.
    func checkSameData(_ splits: [Dataset?]) throws {
        guard isDistributed else { return }
        let checksums = splits.map { $0?.checksum() }
        var mine: [Double] = []
        for (split, checksum) in zip(splits, checksums) {
            mine += [Double(split?.count ?? -1), Double(checksum ?? 0)]
        }
        var largest = mine, smallest = mine.map { -$0 }
        try group.allReduceMax(&largest)
        try group.allReduceMax(&smallest)
        guard zip(largest, smallest).allSatisfy({ $0 == -$1 }) else {
            let sizes = splits.map { $0.map { "\($0.count)" } ?? "none" }.joined(separator: "/")
            throw TrainingError.rankFailed(
                rank: group.rank, ranks: group.size, host: group.processorName,
                "the ranks loaded different data (here train/validation/test \(sizes) images with checksums "
                    + checksums.map { $0.map { String($0, radix: 16) } ?? "-" }.joined(separator: "/")
                    + "); every host needs the same files")
        }
    }

    // MARK: - Random state of every rank

    /// The non-persistent buffers (dropout's generators) of `model`, by name.
    private func generatorBuffers(_ model: Module) -> [(name: String, buffer: Buffer)] {
        model.namedBuffers(includingNonPersistent: true).filter { !$0.buffer.persistent }
    }

    /// Every other rank's generator states, as checkpoint entries `ranks.<r>.<name>` (on
    /// rank 0; empty elsewhere and without generators). Collective: every rank calls it.
    func gatherGenerators(of model: Module) throws -> [String: TensorEntry] {
        let buffers = generatorBuffers(model)
        guard isDistributed, !buffers.isEmpty else { return [:] }
        var words: [UInt64] = []
        for (_, buffer) in buffers {
            if case let .uint64(values) = buffer.values { words += values }
        }
        let bytes = words.withUnsafeBytes { Array($0) }
        guard let all = try group.gather(bytes) else { return [:] }
        var entries: [String: TensorEntry] = [:]
        for rank in 1..<group.size {
            let bytes = all[rank]
            let rankWords = bytes.withUnsafeBytes { raw in
                (0..<(raw.count / 8)).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
            }
            var offset = 0
            for (name, buffer) in buffers {
                let n = buffer.values.count
                guard offset + n <= rankWords.count else { break }
                entries["\(Self.rankPrefix(rank))\(name)"] = try TensorEntry(uint64s: Array(rankWords[offset..<(offset + n)]),
                                                                             shape: buffer.shape)
                offset += n
            }
        }
        return entries
    }

    /// After restoring rank 0's state on another rank: its own generators from the
    /// checkpoint's `ranks.<r>.` entries, or (a new job) generators of its own, seeded by
    /// the run's seed and the rank, so that ranks do not draw the same masks.
    func restoreGenerators(of model: Module, from file: SafeTensorsFile, seed: UInt64) throws {
        guard isDistributed, !group.isRoot else { return }
        let prefix = Self.rankPrefix(group.rank)
        for (index, (name, buffer)) in generatorBuffers(model).enumerated() {
            if let entry = file.tensors[prefix + name] {
                let words = try entry.words()
                guard words.count == buffer.values.count, SeededGenerator(state: words) != nil else {
                    throw TrainingError.checkpoint(file: file.source, "\(prefix)\(name) is not a generator state of \(buffer.values.count) words")
                }
                buffer.values = .uint64(words)
            } else {
                let generator = SeededGenerator(seed: seed ^ 0x5EED_0F_4A4E_4B00,
                                                stream: UInt64(group.rank) << 32 | UInt64(index))
                buffer.values = .uint64(generator.state)
            }
        }
    }

    static func rankPrefix(_ rank: Int) -> String { "ranks.\(rank)." }

    /// The checkpoint metadata key holding the number of processes that wrote it.
    static let ranksKey = "data_parallel_ranks"
}

/// How a training process ends on an error, alone or as one rank of an mpirun job.
public enum JobFailure {
    /// Prints `error` (rank 0 and single processes as always; another rank with its rank and
    /// host, unless every rank reached the same error together) and returns the exit code.
    /// A rank's own failure (its data, its disk) ends the whole job at once (`MPI_Abort`),
    /// so that no rank waits forever in a collective; errors every rank reaches at the same
    /// step (a non-finite loss, a stop on a signal) end each process normally.
    public static func report(_ error: Error, group: ProcessGroup, tool: String) -> Int32 {
        let code = (error as? TrainingError)?.exitCode ?? 1
        // Errors every rank reached together; only `rankFailed` is printed by its own rank.
        let shared: Bool, printHere: Bool
        switch error as? TrainingError {
        case .nonFiniteLoss, .interrupted, .peerFailed: (shared, printHere) = (true, group.isRoot)
        case .rankFailed: (shared, printHere) = (true, true)
        default: (shared, printHere) = (false, group.isRoot)
        }
        if printHere {
            FileHandle.standardError.write(Data("\(tool): error: \(error)\n".utf8))
        } else if !shared {
            FileHandle.standardError.write(Data("\(tool): rank \(group.rank) of \(group.size) on \(group.processorName): error: \(error)\n".utf8))
        }
        if group.isDistributed && !shared { group.abort(code: code) }
        group.finalize()
        return code
    }
}
