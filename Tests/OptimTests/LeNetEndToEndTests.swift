import Autograd
import Foundation
import MNISTData
import NN
import Optim
import SafeTensors
import Seeded
import Testing
import TestSupport

/// From the seed's initial LeNet weights, 10 steps on the first 10 batches of 64 training
/// images in file order, against PyTorch's losses and final weights (lenet_e2e.json).
struct LeNetEndToEndTests {
    struct Reference: Decodable {
        struct Run: Decodable { var losses: [Double] }
        var init_test_logprobs_first8: [[Double]]
        var sgd: Run
        var adam: Run
    }

    static let reference: Reference = {
        let url = Shared.referenceDirectory.appendingPathComponent("lenet_e2e.json")
        return try! JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }()

    static func model(from file: String) throws -> Sequential {
        var g = SeededGenerator(seed: 0)
        let net = Models.lenet(generator: &g)
        let weights = try SafeTensorsFile.read(from: Shared.referenceDirectory.appendingPathComponent(file))
        var state: [String: (shape: [Int], values: [Float])] = [:]
        for (name, entry) in weights.tensors { state[name] = (entry.shape, try entry.floats()) }
        try net.loadStateDict(state)
        return net
    }

    static func batches(split: Split, count: Int) throws -> [Batch] {
        let dataset = try Dataset.load(directory: Shared.mnistDirectory, split: split)
        let loader = try DataLoader(dataset: dataset, batchSize: 64, shuffle: false, seed: 0)
        return Array(loader.batches(epoch: 0).prefix(count))
    }

    @Test func initialLogProbabilitiesOfFirstTestImages() throws {
        let net = try Self.model(from: "lenet_init.safetensors")
        let batch = try #require(try Self.batches(split: .test, count: 1).first)
        let images = try Tensor(shape: [8, 1, 28, 28], data: Array(batch.images.prefix(8 * 784)))
        let out = try withNoGrad { try net(images) }
        if let message = compareClose(out.scalars, Self.reference.init_test_logprobs_first8.flatMap { $0 },
                                      rtol: 0, atol: 1e-4, label: "log-probabilities") {
            Issue.record(Comment(rawValue: message))
        }
    }

    func train(_ optimizerName: String) throws -> (losses: [Double], net: Sequential) {
        let net = try Self.model(from: "lenet_init.safetensors")
        let optimizer: any Optimizer = optimizerName == "sgd"
            ? try SGD(parameters: net.parameters(), learningRate: 0.01, momentum: 0.9)
            : try Adam(parameters: net.parameters(), learningRate: 0.001)
        var losses: [Double] = []
        for batch in try Self.batches(split: .train, count: 10) {
            let x = try Tensor(shape: batch.imageShape, data: batch.images)
            optimizer.zeroGrad()
            let loss = try F.nllLoss(net(x), targets: batch.labels)
            try loss.backward()
            try optimizer.step()
            losses.append(Double(try loss.item()))
        }
        return (losses, net)
    }

    @Test(arguments: ["sgd", "adam"])
    func tenStepsMatchPyTorch(_ optimizerName: String) throws {
        let (losses, net) = try train(optimizerName)
        let expected = optimizerName == "sgd" ? Self.reference.sgd.losses : Self.reference.adam.losses
        if let message = compareClose(losses, expected, rtol: 0, atol: 1e-3, label: "\(optimizerName) losses") {
            Issue.record(Comment(rawValue: message))
        }
        let final = try Self.model(from: "lenet_\(optimizerName)_final.safetensors")
        for ((name, actual), (_, expected)) in zip(net.namedParameters(), final.namedParameters()) {
            if let message = compareClose(actual.scalars, expected.scalars.map(Double.init), rtol: 0, atol: 1e-4,
                                          label: "\(optimizerName) final \(name)") {
                Issue.record(Comment(rawValue: message))
            }
        }
    }
}
