import Autograd
import Distributed
import Foundation
import MNISTData
import SafeTensors
import Testing
import TestSupport
@testable import Training

/// The single-process side of data-parallel training (the mpirun side is checked by
/// `make mpi-test`, scripts/mpi/mpi_test.sh): a group of one changes nothing, the checkpoint
/// records the number of processes and a resume with another number is refused.
struct DataParallelTests {
    @Test func aGroupOfOneChangesNothing() throws {
        let group = ProcessGroup.single
        #expect(group.rank == 0 && group.size == 1 && group.isRoot && !group.isDistributed)
        let p = try Tensor(shape: [3], data: [1, 2, 3], requiresGrad: true)
        p.grad = try Tensor(shape: [3], data: [0.5, -1, 2])
        let parallel = DataParallel(group: group, deterministic: true, parameters: [p])
        let reduced = try parallel.reduce(parameters: [p], share: 0.5, lossSum: 7, correct: 3, stop: true)
        #expect(reduced.lossSum == 7 && reduced.correct == 3 && reduced.stop)
        #expect(p.grad!.scalars == [0.5, -1, 2])  // not scaled by the share: nothing to sum with
        let data = try Dataset.load(directory: Shared.mnistDirectory, split: .test).prefix(10)
        #expect(try parallel.evaluationShare(of: data).count == 10)
        #expect(parallel.shard == .whole)
        #expect(try parallel.inTurn("count") { 42 } == 42)
    }

    @Test func deterministicReduceIsSavedAndReadBack() throws {
        var config = try TrainerTests.smokeConfig()
        #expect(!config.json.contains("deterministic_reduce"))
        config.deterministicReduce = true
        let decoded = try TrainingConfig.decode(Data(config.json.utf8), file: "round trip")
        #expect(decoded.deterministicReduce && decoded == config)
        var overrides = ConfigOverrides()
        overrides.deterministicReduce = true
        var plain = try TrainerTests.smokeConfig()
        try overrides.apply(to: &plain)
        #expect(plain.deterministicReduce)
    }

    @Test func aCheckpointOfAnotherProcessCountIsRefused() throws {
        let out = try makeTemporaryDirectory()
        let config = try TrainerTests.smokeConfig()
        _ = try TrainerTests.run(config, out: out, maxSteps: 3)
        let stateURL = out.appendingPathComponent(Checkpoint.stateFile)
        var state = try SafeTensorsFile.read(from: stateURL)
        #expect(state.metadata[DataParallel.ranksKey] == nil)  // a single process writes none
        state.metadata[DataParallel.ranksKey] = "2"
        try state.write(to: stateURL)
        let error = #expect(throws: TrainingError.self) { try TrainerTests.run(config, out: out, resume: true, removeMaxSteps: true) }
        let message = "\(error.map { "\($0)" } ?? "")"
        #expect(message.contains("was written by a job of 2 process(es) and this one has 1"), "\(message)")
        #expect(message.contains("mpirun -np 2 mnist-train --resume"), "\(message)")
    }

    @Test func rankFailuresArePrintedWhereTheyHappened() {
        let own = TrainingError.rankFailed(rank: 1, ranks: 4, host: "node7", "cannot read /data/train-images-idx3-ubyte.gz")
        #expect("\(own)" == "rank 1 of 4 on node7: cannot read /data/train-images-idx3-ubyte.gz")
        #expect(own.exitCode == 1)
        let stopped = TrainingError.interrupted(signal: "SIGTERM", runDirectory: "/runs/a", step: 9, ranks: 2)
        #expect("\(stopped)".hasSuffix("Resume with: mpirun -np 2 mnist-train --resume /runs/a"))
        #expect(stopped.exitCode == 143)
    }
}
