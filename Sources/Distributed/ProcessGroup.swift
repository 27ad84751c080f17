import CMPI
import Foundation

/// The processes of one data-parallel job and the collectives the trainer needs from them.
///
/// `mpirun -np N mnist-train ...` starts N processes; Open MPI tells each its rank in the
/// environment (`OMPI_COMM_WORLD_RANK`, `OMPI_COMM_WORLD_SIZE`), and `current()` then
/// initialises MPI once for the process. Started any other way, a process is a group of one
/// (`single`): MPI is never initialised and every collective is the identity, so the
/// trainer's code path is the same with and without mpirun.
///
/// Only the main thread calls MPI (`MPI_THREAD_FUNNELED`); the kernels' worker threads
/// never do. Errors in a collective are fatal to the whole job (Open MPI's default
/// `MPI_ERRORS_ARE_FATAL`): a rank that dies takes the job down instead of leaving the
/// others waiting in a collective.
public final class ProcessGroup: @unchecked Sendable {
    /// 0-based; rank 0 owns the run directory and prints.
    public let rank: Int
    public let size: Int
    /// Whether MPI was initialised (a job started by mpirun, even with one process).
    public let usesMPI: Bool
    /// Seconds spent so far in the float all-reduces (`allReduceSum` of a buffer: the
    /// gradients) and float broadcasts (batch norm's running statistics): a step's
    /// communication. Only the main thread calls the collectives, so these need no lock.
    public private(set) var reduceSeconds = 0.0
    /// Bytes all-reduced so far, and the number of all-reduce calls.
    public private(set) var reducedBytes = 0
    public private(set) var reduceCalls = 0

    public var isRoot: Bool { rank == 0 }
    public var isDistributed: Bool { size > 1 }

    private init(rank: Int, size: Int, usesMPI: Bool) {
        self.rank = rank
        self.size = size
        self.usesMPI = usesMPI
    }

    /// A process on its own.
    public static let single = ProcessGroup(rank: 0, size: 1, usesMPI: false)

    /// Initialised once, on first use (Swift runs a static's initialiser exactly once).
    private static let world = Result<ProcessGroup, Error> { try initialize() }

    /// Whether Open MPI's launcher started this process (its environment names a rank).
    public static var launchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMIX_RANK"] != nil
    }

    /// The process group of this process: `MPI_COMM_WORLD` under mpirun (initialised on the
    /// first call), else `single`. Call from the main thread.
    public static func current() throws -> ProcessGroup { try world.get() }

    private static func initialize() throws -> ProcessGroup {
        guard launchedByMPI else { return single }
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided), "MPI_Init_thread")
        guard provided >= cmpi_thread_funneled() else {
            throw DistributedError(call: "MPI_Init_thread", code: provided,
                                   message: "this Open MPI gives thread level \(provided); MPI_THREAD_FUNNELED is needed")
        }
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(cmpi_comm_world(), &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(cmpi_comm_world(), &size), "MPI_Comm_size")
        return ProcessGroup(rank: Int(rank), size: Int(size), usesMPI: true)
    }

    /// This host's name, for messages that say which rank failed where.
    public var processorName: String {
        guard usesMPI else { return ProcessInfo.processInfo.hostName }
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_PROCESSOR_NAME) + 1)
        var length: Int32 = 0
        guard MPI_Get_processor_name(&buffer, &length) == cmpi_success() else { return "?" }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: - Collectives

    /// Sums `buffer` element-wise over the ranks, in place on every rank (`MPI_Allreduce`).
    ///
    /// `deterministic`: every rank gathers every rank's buffer (`MPI_Allgather`) and adds
    /// them in rank order, so the sums do not depend on the reduction algorithm Open MPI
    /// picks (which may vary with message size and placement): two jobs with the same ranks
    /// give bit-identical results. It moves N times the data; `scratch` holds
    /// `size × buffer.count` floats.
    public func allReduceSum(
        _ buffer: UnsafeMutableBufferPointer<Float>, deterministic: Bool = false,
        scratch: UnsafeMutableBufferPointer<Float>? = nil
    ) throws {
        guard usesMPI, size > 1, let base = buffer.baseAddress else { return }
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            reduceSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            reducedBytes += buffer.count * MemoryLayout<Float>.size
            reduceCalls += 1
        }
        let count = Int32(buffer.count)
        guard deterministic else {
            try Self.check(MPI_Allreduce(cmpi_in_place(), base, count, cmpi_float(), cmpi_sum(), cmpi_comm_world()),
                           "MPI_Allreduce")
            return
        }
        guard let scratch, scratch.count >= size * buffer.count, let all = scratch.baseAddress else {
            preconditionFailure("allReduceSum(deterministic:): scratch needs \(size * buffer.count) floats")
        }
        try Self.check(MPI_Allgather(base, count, cmpi_float(), all, count, cmpi_float(), cmpi_comm_world()), "MPI_Allgather")
        let n = buffer.count
        for i in 0..<n { base[i] = all[i] }
        for r in 1..<size {
            let part = all + r * n
            for i in 0..<n { base[i] += part[i] }
        }
    }

    /// Sums `values` element-wise over the ranks (evaluation counts and losses).
    public func allReduceSum(_ values: inout [Double]) throws { try allReduce(&values, cmpi_sum()) }

    /// The element-wise largest of `values` over the ranks (timings: the slowest rank's).
    public func allReduceMax(_ values: inout [Double]) throws { try allReduce(&values, cmpi_max()) }

    private func allReduce(_ values: inout [Double], _ operation: MPI_Op) throws {
        guard usesMPI, size > 1, !values.isEmpty else { return }
        let count = Int32(values.count)
        try values.withUnsafeMutableBufferPointer { buffer in
            try Self.check(MPI_Allreduce(cmpi_in_place(), buffer.baseAddress, count, cmpi_double(), operation,
                                         cmpi_comm_world()), "MPI_Allreduce")
        }
    }

    /// Rank 0's `buffer` on every rank (`MPI_Bcast`).
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        guard usesMPI, size > 1, let base = buffer.baseAddress else { return }
        let start = DispatchTime.now().uptimeNanoseconds
        defer { reduceSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        var offset = 0
        while offset < buffer.count {  // MPI counts are 32-bit
            let count = min(buffer.count - offset, Int(Int32.max))
            try Self.check(MPI_Bcast(base + offset, Int32(count), cmpi_float(), 0, cmpi_comm_world()), "MPI_Bcast")
            offset += count
        }
    }

    /// Rank 0's `bytes` on every rank: the length first, then the bytes.
    public func broadcast(_ bytes: [UInt8]) throws -> [UInt8] {
        guard usesMPI, size > 1 else { return bytes }
        var length = Int64(isRoot ? bytes.count : 0)
        try Self.check(MPI_Bcast(&length, 1, cmpi_int64(), 0, cmpi_comm_world()), "MPI_Bcast")
        var result = isRoot ? bytes : [UInt8](repeating: 0, count: Int(length))
        var offset = 0
        try result.withUnsafeMutableBytes { raw in
            while offset < Int(length) {
                let count = min(Int(length) - offset, Int(Int32.max))
                try Self.check(MPI_Bcast(raw.baseAddress! + offset, Int32(count), cmpi_byte(), 0, cmpi_comm_world()),
                               "MPI_Bcast")
                offset += count
            }
        }
        return result
    }

    /// Every rank's `bytes`, in rank order, on rank 0 (nil on the others): `MPI_Gather` of
    /// the lengths, then `MPI_Gatherv` of the bytes.
    public func gather(_ bytes: [UInt8]) throws -> [[UInt8]]? {
        guard usesMPI, size > 1 else { return [bytes] }
        var length = Int32(bytes.count)
        var lengths = [Int32](repeating: 0, count: size)
        try Self.check(MPI_Gather(&length, 1, cmpi_int32(), &lengths, 1, cmpi_int32(), 0, cmpi_comm_world()),
                       "MPI_Gather")
        var offsets = [Int32](repeating: 0, count: size)
        for r in 1..<size { offsets[r] = offsets[r - 1] + lengths[r - 1] }
        let total = isRoot ? Int(offsets[size - 1] + lengths[size - 1]) : 0
        var all = [UInt8](repeating: 0, count: max(total, 1))
        var local = bytes.isEmpty ? [0] : bytes
        try local.withUnsafeMutableBytes { send in
            try all.withUnsafeMutableBytes { receive in
                try Self.check(MPI_Gatherv(send.baseAddress, length, cmpi_byte(), receive.baseAddress, &lengths, &offsets,
                                           cmpi_byte(), 0, cmpi_comm_world()), "MPI_Gatherv")
            }
        }
        guard isRoot else { return nil }
        return (0..<size).map { r in Array(all[Int(offsets[r])..<Int(offsets[r] + lengths[r])]) }
    }

    /// Waits until every rank has called it.
    public func barrier() throws {
        guard usesMPI, size > 1 else { return }
        try Self.check(MPI_Barrier(cmpi_comm_world()), "MPI_Barrier")
    }

    /// Ends the whole job with `code` (`MPI_Abort`): Open MPI's launcher kills every rank.
    /// A process on its own just exits.
    public func abort(code: Int32) -> Never {
        if usesMPI { MPI_Abort(cmpi_comm_world(), code) }
        exit(code)
    }

    /// Shuts MPI down (after the last collective of every rank); a no-op without MPI.
    public func finalize() {
        guard usesMPI else { return }
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }

    private static func check(_ code: Int32, _ call: String) throws {
        guard code != cmpi_success() else { return }
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        let text = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw DistributedError(call: call, code: code, message: text)
    }
}

/// A failed MPI call: which, its error code and Open MPI's text for it.
public struct DistributedError: Error, CustomStringConvertible {
    public let call: String
    public let code: Int32
    public let message: String
    public var description: String { "\(call) failed (MPI error \(code)): \(message)" }
}
