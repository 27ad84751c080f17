import Foundation
import Seeded

// MARK: - Normalization and augmentation settings

/// `(x - mean) / std`, per channel (one channel here).
public struct Normalization: Sendable, Hashable, Codable {
    public var mean: Float
    public var std: Float

    public init(mean: Float, std: Float) {
        self.mean = mean
        self.std = std
    }

    /// MNIST's training-set statistics, as in the PyTorch tutorial: `Normalize((0.1307,), (0.3081,))`.
    public static let mnist = Normalization(mean: 0.1307, std: 0.3081)
}

/// Random shifts, rotations and scalings (torchvision's `RandomAffine(degrees, translate,
/// scale)`), drawn per sample and applied in one resampling.
public struct Augmentation: Sendable, Hashable, Codable {
    public enum Interpolation: String, Sendable, Hashable, Codable {
        case nearest
        case bilinear
    }

    /// Each image moves by a whole number of pixels in `-maxShift...maxShift`, per axis.
    public var maxShift: Int
    /// Each image turns by an angle uniform in `-maxRotationDegrees...maxRotationDegrees`.
    public var maxRotationDegrees: Float
    /// Each image is scaled about its centre by a factor uniform in this range (1...1: not
    /// scaled, and nothing is drawn for it).
    public var scale: ClosedRange<Float>
    /// Mirror left–right with probability 1/2 (torchvision's `RandomHorizontalFlip`),
    /// for data where that keeps the class (clothes, not digits).
    public var horizontalFlip: Bool
    public var interpolation: Interpolation

    public init(
        maxShift: Int = 2, maxRotationDegrees: Float = 10, scale: ClosedRange<Float> = 1...1, horizontalFlip: Bool = false,
        interpolation: Interpolation = .bilinear
    ) {
        self.maxShift = maxShift
        self.maxRotationDegrees = maxRotationDegrees
        self.scale = scale
        self.horizontalFlip = horizontalFlip
        self.interpolation = interpolation
    }
}

// MARK: - Transform

/// A composition of steps applied to each image as it is written into a batch, mirroring
/// `transforms.Compose([ToTensor(), Normalize((0.1307,), (0.3081,))])`.
///
/// Rules (checked by `init`): exactly one `.toTensor`; any `.randomAffine` comes before it
/// (it works on pixels, filling uncovered pixels with background 0, as torchvision does on
/// PIL images); `.normalize` steps come after it.
public struct Transform: Sendable, Hashable {
    public enum Step: Sendable, Hashable {
        /// `UInt8` pixel → `Float` in [0, 1] (pixel / 255), laid out 1×rows×cols.
        case toTensor
        /// `(x - mean) / std`.
        case normalize(Normalization)
        /// Random shift and rotation, seeded by the loader per (seed, epoch, sample position).
        case randomAffine(Augmentation)
    }

    public let steps: [Step]
    /// The augmentation, if any.
    public let augmentation: Augmentation?
    /// All per-pixel steps folded into `value = pixel * scale + offset`.
    let scale: Float
    let offset: Float

    public init(_ steps: [Step]) throws {
        var augmentation: Augmentation?
        var sawToTensor = false
        var scale: Float = 1
        var offset: Float = 0
        for step in steps {
            switch step {
            case .toTensor:
                guard !sawToTensor else { throw DataError.invalidTransform("toTensor appears twice") }
                sawToTensor = true
                scale /= 255
                offset /= 255
            case .normalize(let normalization):
                guard sawToTensor else {
                    throw DataError.invalidTransform("normalize must come after toTensor")
                }
                guard normalization.std > 0, normalization.std.isFinite, normalization.mean.isFinite else {
                    throw DataError.invalidTransform(
                        "normalize needs a finite mean and std > 0, got mean \(normalization.mean) "
                            + "std \(normalization.std)")
                }
                scale /= normalization.std
                offset = (offset - normalization.mean) / normalization.std
            case .randomAffine(let settings):
                guard !sawToTensor else {
                    throw DataError.invalidTransform("randomAffine must come before toTensor")
                }
                guard augmentation == nil else {
                    throw DataError.invalidTransform("randomAffine appears twice")
                }
                guard settings.maxShift >= 0, settings.maxRotationDegrees >= 0,
                    settings.maxRotationDegrees <= 180, settings.scale.lowerBound > 0, settings.scale.upperBound.isFinite
                else {
                    throw DataError.invalidTransform(
                        "randomAffine needs maxShift >= 0, maxRotationDegrees in 0...180 and a scale range above 0, got "
                            + "\(settings.maxShift), \(settings.maxRotationDegrees) and \(settings.scale)")
                }
                augmentation = settings
            }
        }
        guard sawToTensor else { throw DataError.invalidTransform("toTensor is missing") }
        self.steps = steps
        self.augmentation = augmentation
        self.scale = scale
        self.offset = offset
    }

    /// `[.toTensor, .normalize(.mnist)]`: the tutorial's pipeline.
    public static let mnist = Transform(
        validSteps: [.toTensor, .normalize(.mnist)], augmentation: nil,
        scale: 1 / 255 / Normalization.mnist.std, offset: -Normalization.mnist.mean / Normalization.mnist.std)

    /// `[.toTensor]` only: values in [0, 1].
    public static let toTensorOnly = Transform(
        validSteps: [.toTensor], augmentation: nil, scale: 1 / 255, offset: 0)

    /// For the built-in pipelines above, whose validity is evident.
    private init(validSteps: [Step], augmentation: Augmentation?, scale: Float, offset: Float) {
        self.steps = validSteps
        self.augmentation = augmentation
        self.scale = scale
        self.offset = offset
    }

    /// The same transform with `augmentation` inserted first (or removed when nil).
    /// Pixels to `[0, 1]`, then normalized: what every image goes through before the model
    /// (training, evaluation, pictures), so all of them compute the same floats.
    public static func normalized(_ normalization: Normalization) throws -> Transform {
        try Transform([.toTensor, .normalize(normalization)])
    }

    /// `count` images of `rows * cols` bytes, transformed, as `(count, 1, rows, cols)` floats.
    public func apply(images: [UInt8], count: Int, rows: Int, cols: Int) -> [Float] {
        var generator = SeededGenerator(seed: 0)  // untouched without augmentation
        return [Float](unsafeUninitializedCapacity: count * rows * cols) { output, initialized in
            images.withUnsafeBufferPointer { pixels in
                for i in 0..<count {
                    apply(image: pixels.baseAddress! + i * rows * cols, rows: rows, cols: cols,
                          into: output.baseAddress! + i * rows * cols, generator: &generator)
                }
            }
            initialized = count * rows * cols
        }
    }

    public func withAugmentation(_ augmentation: Augmentation?) throws -> Transform {
        var steps = self.steps.filter {
            if case .randomAffine = $0 { return false }
            return true
        }
        if let augmentation { steps.insert(.randomAffine(augmentation), at: 0) }
        return try Transform(steps)
    }

    // MARK: - Applying

    /// Writes one transformed image.
    ///
    /// - Parameters:
    ///   - image: `rows * cols` pixels, row-major.
    ///   - output: `rows * cols` floats (one channel), row-major.
    ///   - generator: draws the augmentation's parameters (untouched without augmentation).
    public func apply(
        image: UnsafePointer<UInt8>, rows: Int, cols: Int, into output: UnsafeMutablePointer<Float>,
        generator: inout SeededGenerator
    ) {
        let pixelCount = rows * cols
        if let augmentation {
            let draw = Self.draw(augmentation, generator: &generator)
            Transform.resample(
                image: image, rows: rows, cols: cols, into: output,
                shiftX: Float(draw.shiftX), shiftY: Float(draw.shiftY), radians: draw.degrees * .pi / 180, scale: draw.zoom,
                mirror: draw.mirror, interpolation: augmentation.interpolation)
            for index in 0..<pixelCount {
                output[index] = output[index] * scale + offset
            }
        } else {
            for index in 0..<pixelCount {
                output[index] = Float(image[index]) * scale + offset
            }
        }
    }

    /// Makes the draws `apply` makes for one image, without the image: a data-parallel rank
    /// skips the images of a batch that other ranks transform, keeping its generator where a
    /// single process's would be.
    public func skipDraws(generator: inout SeededGenerator) {
        if let augmentation { _ = Self.draw(augmentation, generator: &generator) }
    }

    /// One image's random affine parameters, in the order they are drawn.
    static func draw(_ augmentation: Augmentation, generator: inout SeededGenerator)
        -> (shiftX: Int, shiftY: Int, degrees: Float, zoom: Float, mirror: Bool)
    {
        let shiftRange = 2 * augmentation.maxShift + 1
        let shiftX = generator.nextInt(below: shiftRange) - augmentation.maxShift
        let shiftY = generator.nextInt(below: shiftRange) - augmentation.maxShift
        let degrees = generator.nextUniform(-augmentation.maxRotationDegrees, augmentation.maxRotationDegrees)
        let range = augmentation.scale
        let zoom = range.lowerBound == range.upperBound ? range.lowerBound
            : generator.nextUniform(range.lowerBound, range.upperBound)
        let mirror = augmentation.horizontalFlip && generator.nextInt(below: 2) == 1
        return (shiftX, shiftY, degrees, zoom, mirror)
    }

    /// Mirrors left–right (`mirror`), rotates by `radians` and scales by `scale` about the
    /// image centre, then shifts by `(shiftX, shiftY)` pixels, in one resampling; writes raw
    /// pixel values (0...255) as floats, 0 where the source is outside the image.
    static func resample(
        image: UnsafePointer<UInt8>, rows: Int, cols: Int, into output: UnsafeMutablePointer<Float>,
        shiftX: Float, shiftY: Float, radians: Float, scale: Float = 1, mirror: Bool = false,
        interpolation: Augmentation.Interpolation
    ) {
        // The inverse map divides by the scale.
        let cosine = cos(radians) / scale
        let sine = sin(radians) / scale
        let centreX = Float(cols - 1) / 2
        let centreY = Float(rows - 1) / 2
        /// The source pixel at (x, y), 0 outside the image.
        @inline(__always) func pixel(_ x: Int, _ y: Int) -> Float {
            x >= 0 && x < cols && y >= 0 && y < rows ? Float(image[y * cols + x]) : 0
        }
        for y in 0..<rows {
            for x in 0..<cols {
                // Inverse map: output pixel → source position.
                let dx = Float(x) - centreX - shiftX
                let dy = Float(y) - centreY - shiftY
                let unmirroredX = cosine * dx + sine * dy
                let sourceX = (mirror ? -unmirroredX : unmirroredX) + centreX
                let sourceY = -sine * dx + cosine * dy + centreY
                var value: Float = 0
                switch interpolation {
                case .nearest:
                    let nearestX = Int(sourceX.rounded())
                    let nearestY = Int(sourceY.rounded())
                    if nearestX >= 0, nearestX < cols, nearestY >= 0, nearestY < rows {
                        value = Float(image[nearestY * cols + nearestX])
                    }
                case .bilinear:
                    let x0 = Int(sourceX.rounded(.down))
                    let y0 = Int(sourceY.rounded(.down))
                    let fractionX = sourceX - Float(x0)
                    let fractionY = sourceY - Float(y0)
                    value = (1 - fractionX) * (1 - fractionY) * pixel(x0, y0)
                        + fractionX * (1 - fractionY) * pixel(x0 + 1, y0)
                        + (1 - fractionX) * fractionY * pixel(x0, y0 + 1)
                        + fractionX * fractionY * pixel(x0 + 1, y0 + 1)
                }
                output[y * cols + x] = value
            }
        }
    }
}
