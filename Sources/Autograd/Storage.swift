/// A block of `count` floats owned by one or more tensors (views share it).
///
/// Plain manual memory: kernels get raw pointers with no copy-on-write, bounds checks or
/// retain/release in their loops. The block is 64-byte aligned for vector loads.
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Uninitialised storage; the caller fills every element.
    public init(uninitializedCount count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(1, count) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(1, count))
    }

    /// Storage filled with `value`.
    public convenience init(count: Int, repeating value: Float) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    /// Storage holding a copy of `values`.
    public convenience init(copying values: UnsafeBufferPointer<Float>) {
        self.init(uninitializedCount: values.count)
        if let base = values.baseAddress { pointer.initialize(from: base, count: values.count) }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}
