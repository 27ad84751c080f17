// MARK: - DType

/// The element types a safetensors file can hold, spelled as in the header (`"F32"`, ...).
///
/// Every type is stored little-endian. `BOOL` takes one byte per element.
public enum DType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16
    case I64, I32, I16, I8
    case U64, U32, U16, U8
    case BOOL

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL: return 1
        }
    }

    /// The position of this type in the reference Rust implementation's `Dtype` enum
    /// (`BOOL, ..., U8, I8, ..., I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64`).
    /// The reference writer lays tensors out by this rank, highest first, then by name,
    /// which keeps every tensor aligned to its element size; we do the same so our files
    /// are byte-identical to `safetensors.torch.save_file`.
    var referenceWriterRank: Int {
        switch self {
        case .BOOL: return 0
        case .U8: return 4
        case .I8: return 5
        case .I16: return 9
        case .U16: return 10
        case .F16: return 11
        case .BF16: return 12
        case .I32: return 13
        case .U32: return 14
        case .F32: return 15
        case .F64: return 16
        case .I64: return 17
        case .U64: return 18
        }
    }
}
