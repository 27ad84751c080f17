// MARK: - im2col / col2im for one sample

/// Unfolds one sample into patch columns.
///
/// - Parameters:
///   - input: `(inChannels, height, width)` of one sample.
///   - columns: `(inChannels * kernelHeight * kernelWidth, outHeight * outWidth)`; row
///     `(c * kernelHeight + kh) * kernelWidth + kw` holds, for every output pixel, the input
///     value under kernel tap `(kh, kw)` of channel `c`, or 0 where it falls in the padding.
@inlinable
func im2col(_ s: Conv2dShape, input: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>) {
    if s.padH == 0 && s.padW == 0 && s.strideH == 1 && s.strideW == 1 {
        im2colUnpaddedUnitStride(s, input: input, columns: columns)
        return
    }
    let outH = s.outHeight, outW = s.outWidth, plane = outH * outW
    var row = columns
    for c in 0..<s.inChannels {
        let channel = input + c * s.height * s.width
        for kh in 0..<s.kernelHeight {
            for kw in 0..<s.kernelWidth {
                let columnOffset = kw * s.dilationW - s.padW
                // Output columns whose input column lies inside the image: [lo, hi).
                let (lo, hi) = validRange(
                    offset: columnOffset, stride: s.strideW, size: s.width, count: outW)
                var destination = row
                for oh in 0..<outH {
                    let ih = oh * s.strideH - s.padH + kh * s.dilationH
                    if ih < 0 || ih >= s.height || lo >= hi {
                        destination.update(repeating: 0, count: outW)
                    } else {
                        let source = channel + ih * s.width + columnOffset
                        for ow in 0..<lo { destination[ow] = 0 }
                        if s.strideW == 1 {
                            // A plain loop: rows are short (8 to 24 floats in LeNet) and a
                            // memmove call per row cost more than the copy.
                            for ow in lo..<hi { destination[ow] = source[ow] }
                        } else {
                            for ow in lo..<hi { destination[ow] = source[ow * s.strideW] }
                        }
                        for ow in hi..<outW { destination[ow] = 0 }
                    }
                    destination += outW
                }
                row += plane
            }
        }
    }
}

/// Folds patch columns back onto one sample, summing overlapping taps: the adjoint of
/// `im2col`. `gradInput` `(inChannels, height, width)` is overwritten.
@inlinable
func col2im(_ s: Conv2dShape, columns: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>) {
    let outH = s.outHeight, outW = s.outWidth, plane = outH * outW
    gradInput.update(repeating: 0, count: s.inChannels * s.height * s.width)
    if s.padH == 0 && s.padW == 0 && s.strideH == 1 && s.strideW == 1 {
        col2imUnpaddedUnitStride(s, columns: columns, gradInput: gradInput)
        return
    }
    var row = columns
    for c in 0..<s.inChannels {
        let channel = gradInput + c * s.height * s.width
        for kh in 0..<s.kernelHeight {
            for kw in 0..<s.kernelWidth {
                let columnOffset = kw * s.dilationW - s.padW
                let (lo, hi) = validRange(
                    offset: columnOffset, stride: s.strideW, size: s.width, count: outW)
                var source = row
                if lo < hi {
                    for oh in 0..<outH {
                        let ih = oh * s.strideH - s.padH + kh * s.dilationH
                        if ih >= 0 && ih < s.height {
                            let destination = channel + ih * s.width + columnOffset
                            if s.strideW == 1 {
                                for ow in lo..<hi { destination[ow] += source[ow] }
                            } else {
                                for ow in lo..<hi { destination[ow * s.strideW] += source[ow] }
                            }
                        }
                        source += outW
                    }
                }
                row += plane
            }
        }
    }
}

// MARK: - No padding, stride 1 (LeNet's convolutions)

/// `im2col` when every tap is inside the image: each row is `outHeight` plain copies of
/// `outWidth` floats, without the bounds bookkeeping that dominated for 8-wide rows.
@inlinable
func im2colUnpaddedUnitStride(
    _ s: Conv2dShape, input: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>
) {
    let outH = s.outHeight, outW = s.outWidth, width = s.width
    var destination = columns
    for c in 0..<s.inChannels {
        let channel = input + c * s.height * width
        for kh in 0..<s.kernelHeight {
            for kw in 0..<s.kernelWidth {
                var source = channel + kh * s.dilationH * width + kw * s.dilationW
                for _ in 0..<outH {
                    copyRow(from: source, to: destination, count: outW)
                    destination += outW
                    source += width
                }
            }
        }
    }
}

/// `col2im` (accumulating into a zeroed `gradInput`) when every tap is inside the image.
@inlinable
func col2imUnpaddedUnitStride(
    _ s: Conv2dShape, columns: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>
) {
    let outH = s.outHeight, outW = s.outWidth, width = s.width
    var source = columns
    for c in 0..<s.inChannels {
        let channel = gradInput + c * s.height * width
        for kh in 0..<s.kernelHeight {
            for kw in 0..<s.kernelWidth {
                var destination = channel + kh * s.dilationH * width + kw * s.dilationW
                for _ in 0..<outH {
                    addRow(source, to: destination, count: outW)
                    source += outW
                    destination += width
                }
            }
        }
    }
}

/// `destination[0..<count] = source[0..<count]`, eight floats at a time. Rows here are
/// 8 to 24 floats: a plain loop compiled to alias checks and 4-wide moves, and a memmove
/// call per row cost more than the copy.
@inlinable @inline(__always)
func copyRow(from source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        let v = UnsafeRawPointer(source + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(destination + i).storeBytes(of: v, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count {
        destination[i] = source[i]
        i += 1
    }
}

/// `destination[0..<count] += source[0..<count]`, eight floats at a time (see `copyRow`).
@inlinable @inline(__always)
func addRow(_ source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        let v = UnsafeRawPointer(source + i).loadUnaligned(as: SIMD8<Float>.self)
            + UnsafeRawPointer(destination + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(destination + i).storeBytes(of: v, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count {
        destination[i] += source[i]
        i += 1
    }
}

/// The range of `i` in `0..<count` with `0 <= offset + i * stride < size`.
@inlinable
func validRange(offset: Int, stride: Int, size: Int, count: Int) -> (Int, Int) {
    // Smallest i with offset + i * stride >= 0.
    let lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride
    // Smallest i with offset + i * stride >= size.
    let limit = size - offset
    let hi = limit <= 0 ? 0 : (limit + stride - 1) / stride
    return (min(lo, count), max(min(hi, count), min(lo, count)))
}
