import Foundation

// MARK: - TensorEntry

/// One tensor of a safetensors file: its element type, its shape and its raw bytes.
///
/// `bytes` holds exactly `elementCount * dtype.byteSize` bytes, little-endian, in row-major
/// (C) order, as PyTorch's `tensor.contiguous()` stores them. The initializers check this,
/// and the properties are immutable, so every entry in hand is consistent.
public struct TensorEntry: Sendable, Equatable {
    public let dtype: DType
    /// Sizes of the dimensions, outermost first; `[]` is a scalar (one element).
    public let shape: [Int]
    /// Exactly `elementCount * dtype.byteSize` little-endian bytes; indices start at 0.
    public let bytes: Data
    /// The product of `shape` (1 for a scalar).
    public let elementCount: Int

    /// An entry from raw bytes; throws if the shape is negative, overflows, or does not
    /// match the byte count.
    public init(dtype: DType, shape: [Int], bytes: Data) throws {
        let count = try TensorEntry.checkedElementCount(shape)
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        if overflow {
            throw SafeTensorsError.invalidShape(shape: shape, reason: "byte count overflows Int")
        }
        guard byteCount == bytes.count else {
            throw SafeTensorsError.valueCountMismatch(
                dtype: dtype, shape: shape, expectedBytes: byteCount, actualBytes: bytes.count)
        }
        self.init(validatedDType: dtype, shape: shape, elementCount: count, bytes: bytes)
    }

    /// An F32 entry holding `floats` (row-major) with the given shape; throws if the
    /// product of `shape` is not `floats.count`.
    public init(floats: [Float], shape: [Int]) throws {
        let count = try TensorEntry.checkedElementCount(shape)
        guard count == floats.count else {
            throw SafeTensorsError.valueCountMismatch(
                dtype: .F32, shape: shape, expectedBytes: count * 4, actualBytes: floats.count * 4)
        }
        var bytes = Data(count: count * 4)
        bytes.withUnsafeMutableBytes { raw in
            floats.withUnsafeBufferPointer { source in
                for index in 0..<source.count {
                    raw.storeBytes(
                        of: source[index].bitPattern.littleEndian, toByteOffset: index * 4, as: UInt32.self)
                }
            }
        }
        self.init(validatedDType: .F32, shape: shape, elementCount: count, bytes: bytes)
    }

    /// An I64 entry (PyTorch's `torch.int64`, e.g. batch norm's `num_batches_tracked`).
    public init(int64s values: [Int64], shape: [Int]) throws {
        try self.init(words: values.map { UInt64(bitPattern: $0) }, dtype: .I64, shape: shape)
    }

    /// A U64 entry (random generator states).
    public init(uint64s values: [UInt64], shape: [Int]) throws {
        try self.init(words: values, dtype: .U64, shape: shape)
    }

    private init(words: [UInt64], dtype: DType, shape: [Int]) throws {
        let count = try TensorEntry.checkedElementCount(shape)
        guard count == words.count else {
            throw SafeTensorsError.valueCountMismatch(dtype: dtype, shape: shape, expectedBytes: count * 8, actualBytes: words.count * 8)
        }
        var bytes = Data(count: count * 8)
        bytes.withUnsafeMutableBytes { raw in
            for (index, word) in words.enumerated() { raw.storeBytes(of: word.littleEndian, toByteOffset: index * 8, as: UInt64.self) }
        }
        self.init(validatedDType: dtype, shape: shape, elementCount: count, bytes: bytes)
    }

    /// The values of an I64 or U64 entry as 64-bit words (two's complement for I64);
    /// other types throw `notInteger64`.
    public func words() throws -> [UInt64] {
        guard dtype == .I64 || dtype == .U64 else { throw SafeTensorsError.notInteger64(dtype: dtype) }
        return bytes.withUnsafeBytes { raw in
            (0..<elementCount).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
        }
    }

    /// Used by the reader after it has checked every field itself.
    init(validatedDType dtype: DType, shape: [Int], elementCount: Int, bytes: Data) {
        self.dtype = dtype
        self.shape = shape
        self.elementCount = elementCount
        self.bytes = bytes
    }

    // MARK: - Conversion

    /// The values as Float, row-major. F32 is copied exactly; F64 is rounded to nearest;
    /// F16 and BF16 are widened exactly. Integer and BOOL types throw `notFloatingPoint`.
    public func floats() throws -> [Float] {
        let count = elementCount
        let dtype = self.dtype
        guard [.F32, .F64, .F16, .BF16].contains(dtype) else {
            throw SafeTensorsError.notFloatingPoint(tensor: nil, dtype: dtype)
        }
        return [Float](unsafeUninitializedCapacity: count) { output, initialized in
            bytes.withUnsafeBytes { raw in
                switch dtype {
                case .F32:
                    for index in 0..<count {
                        let bits = raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)
                        output[index] = Float(bitPattern: UInt32(littleEndian: bits))
                    }
                case .F64:
                    for index in 0..<count {
                        let bits = raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
                        output[index] = Float(Double(bitPattern: UInt64(littleEndian: bits)))
                    }
                case .F16:
                    for index in 0..<count {
                        let bits = raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)
                        output[index] = floatFromHalf(UInt16(littleEndian: bits))
                    }
                case .BF16:
                    for index in 0..<count {
                        let bits = raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)
                        output[index] = Float(bitPattern: UInt32(UInt16(littleEndian: bits)) << 16)
                    }
                default:
                    break  // excluded by the guard above
                }
            }
            initialized = count
        }
    }

    // MARK: - Shape arithmetic

    /// The product of `shape`, or a thrown `invalidShape` for a negative size or overflow.
    static func checkedElementCount(_ shape: [Int]) throws -> Int {
        var count = 1
        for size in shape {
            guard size >= 0 else {
                throw SafeTensorsError.invalidShape(shape: shape, reason: "dimension \(size) is negative")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            if overflow {
                throw SafeTensorsError.invalidShape(shape: shape, reason: "element count overflows Int")
            }
            count = product
        }
        return count
    }
}

// MARK: - Half precision

/// IEEE 754 binary16 → binary32, exact (subnormals, infinities and NaN payloads kept).
/// Written out by hand because `Float16` is unavailable on some platforms (macOS x86).
func floatFromHalf(_ half: UInt16) -> Float {
    let sign = UInt32(half & 0x8000) << 16
    let exponent = UInt32(half >> 10) & 0x1F
    let mantissa = UInt32(half & 0x03FF)
    if exponent == 0x1F {  // infinity or NaN
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    if exponent == 0 {  // zero or subnormal: mantissa * 2^-24
        let magnitude = Float(mantissa) * Float(bitPattern: 0x3380_0000)  // 2^-24
        return sign == 0 ? magnitude : -magnitude
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}
