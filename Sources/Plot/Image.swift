import Foundation
import SafeTensors

// MARK: - Errors

/// Everything that can go wrong while drawing or writing a picture.
public enum PlotError: Error, CustomStringConvertible, LocalizedError {
    /// The pixel buffer does not match `width * height * channels`, or a dimension is invalid.
    case invalidImage(width: Int, height: Int, channels: Int, pixelCount: Int)
    /// A figure argument is out of range; `expected` says what was needed.
    case invalidArgument(function: String, argument: String, value: String, expected: String)
    /// zlib's `compress2` returned an error code.
    case compressionFailed(code: Int32)
    /// Writing the file failed; `reason` is the underlying message.
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidImage(width, height, channels, pixelCount):
            return "invalid image: width \(width), height \(height), channels \(channels) with \(pixelCount) "
                + "bytes of pixels; expected width and height ≥ 1, channels 1 or 3 and "
                + "width*height*channels bytes"
        case let .invalidArgument(function, argument, value, expected):
            return "\(function): argument '\(argument)' is \(value); expected \(expected)"
        case let .compressionFailed(code):
            return "PNG encoding: zlib compress2 failed with code \(code)"
        case let .writeFailed(path, reason):
            return "cannot write picture to \(path): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

// MARK: - Image

/// An 8-bit raster image: grayscale (`channels == 1`) or RGB (`channels == 3`).
///
/// `pixels` is row-major, top row first, channels interleaved:
/// byte `(y * width + x) * channels + c` is channel `c` of pixel `(x, y)`.
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public let pixels: [UInt8]

    /// Checks that the buffer holds exactly `width * height * channels` bytes.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        guard width >= 1, height >= 1, width <= 1 << 20, height <= 1 << 20,
              channels == 1 || channels == 3,
              pixels.count == width * height * channels
        else {
            throw PlotError.invalidImage(width: width, height: height, channels: channels, pixelCount: pixels.count)
        }
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// For callers that built the buffer themselves with the right size (the `Canvas`).
    init(validatedWidth width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// The pixel at `(x, y)` as `[gray]` or `[red, green, blue]`; `nil` outside the image.
    public func pixel(x: Int, y: Int) -> [UInt8]? {
        guard x >= 0, y >= 0, x < width, y < height else { return nil }
        let start = (y * width + x) * channels
        return Array(pixels[start..<start + channels])
    }

    /// Encodes the image as PNG and writes it with `AtomicFile` (temporary file, fsync,
    /// rename), so readers never see half a file and a killed write leaves a temporary that
    /// a resumed run removes. Returns the file's bytes.
    @discardableResult
    public func write(to url: URL) throws -> Data {
        let data = try PNGEncoder.encode(self)
        do { try AtomicFile.write(data, to: url) } catch {
            throw PlotError.writeFailed(path: url.path, reason: "\(error)")
        }
        return data
    }
}
