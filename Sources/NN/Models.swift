import Seeded

/// Ready-made networks with PyTorch's parameter names.
public enum Models {
    /// The tutorial's LeNet, as in PyTorch's MNIST example of its day: conv1 1→20 k5,
    /// ReLU, 2×2 max-pool; conv2 20→50 k5, ReLU, 2×2 max-pool; flatten (800); fc1
    /// 800→500, ReLU; fc2 500→10; log-softmax. Parameters `conv1.weight` … `fc2.bias`.
    public static func lenet(generator: inout SeededGenerator) -> Sequential {
        Sequential(named: [
            ("conv1", Conv2d(1, 20, 5, generator: &generator)),
            ("relu1", ReLU()),
            ("pool1", MaxPool2d(kernelSize: 2)),
            ("conv2", Conv2d(20, 50, 5, generator: &generator)),
            ("relu2", ReLU()),
            ("pool2", MaxPool2d(kernelSize: 2)),
            ("flatten", Flatten()),
            ("fc1", Linear(800, 500, generator: &generator)),
            ("relu3", ReLU()),
            ("fc2", Linear(500, 10, generator: &generator)),
            ("log_softmax", LogSoftmax(dim: 1)),
        ])
    }
}
