// MARK: - A convolution of one or two input channels under a 2×2 pool, pool windows across the lanes (AVX-512)

// LeNet's conv1 (1 → 20 channels, 5×5, 28×28) and the speedrun nets' (1 → 8 or 24) do 25
// multiply-adds per output, so the five-channel kernel pooled in registers
// (`directConvolvePoolSample`) spends about as long pooling as multiplying: each 16-lane
// sum holds a row chunk and the one below it, and its 2×2 windows are taken apart by
// lane-crossing shuffles (on Intel's cores, on the port of the second FMA unit). Here the
// lanes are sixteen pool windows instead, one vector for each of a window's four
// positions (top-left, top-right, bottom-left, bottom-right): pooling is then three
// comparisons between whole vectors, and the argmax a blend of constants.
//
// So that each position of sixteen consecutive windows (row-major over the pooled plane,
// across its rows) is one unit-stride load, each sample is first split into planes
// (`splitPlanes`): for input channel c, row parity q and column shift h (0 ... kernel
// width), plane[c][q][h][i][j] = x[c][2i + q][2j + h], `pooledWidth` columns a row. The
// input of tap (c, kh, kw) for window (i, j) at its top-left position is x[c][2i + kh][2j + kw]
// = plane[c][kh % 2][kw][i + kh / 2][j]: at a fixed offset from the window's flattened index
// i · pooledWidth + j, for every window. Four channels at a time (sixteen sums), each sum
// from the bias by one fused multiply-add per tap in weight order: the direct kernels'
// chain, bit for bit, and the pool's rule as `poolFourWindowsOfTwo`'s.

#if MNIST_ISA_AVX512
/// The layout of the window-lane pass of `conv2dMaxPool2dForward` for a shape.
@usableFromInline
struct WindowLanes {
    let shape: Conv2dShape
    /// The pooled plane's width, windows (its size) and 16-window vectors.
    let pooledWidth: Int, windows: Int, vectors: Int
    /// Rows of each plane (`pooledHeight + kernelHeight / 2`), column shifts
    /// (`kernelWidth + 1`), floats of one plane (`planeCount`: rounded up to 16, so that with the planes
    /// on a cache line, as `planes(in:)` puts them, each plane's first row is too: a 16-lane
    /// load across two lines costs two).
    let rows: Int, shifts: Int, plane: Int
    /// For each tap in weight order, the offsets of its top-left, top-right, bottom-left and
    /// bottom-right inputs from the planes' start.
    let offsets: [Int]
    /// Each window's top-left pixel in the convolution's output plane, `vectors · 16` of
    /// them (the argmax of that position; the last vector's lanes past `windows` repeat 0).
    let origins: [Int32]

    /// The shapes taken: direct (unstrided), one or two input channels, under a 2×2,
    /// stride-2 pool, at least 16 windows.
    @usableFromInline
    static func applies(_ s: Conv2dShape, pool: Pool2dShape) -> Bool {
        !Conv2dPlan.fiveChannelForwardOnly && Conv2dPlan.choose(s) == .direct && Conv2dPlan.isUnstrided(s)
            && s.inChannels <= 2 && isSimple2x2(pool) && pool.outHeight * pool.outWidth >= 16
    }

    @usableFromInline
    init(_ s: Conv2dShape, pool: Pool2dShape) {
        shape = s
        pooledWidth = pool.outWidth
        windows = pool.outHeight * pool.outWidth
        vectors = (windows + 15) / 16
        rows = pool.outHeight + s.kernelHeight / 2
        shifts = s.kernelWidth + 1
        let plane = Self.planeCount(s, pool: pool)
        self.plane = plane
        var offsets: [Int] = []
        for c in 0..<s.inChannels {
            for kh in 0..<s.kernelHeight {
                for kw in 0..<s.kernelWidth {
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let y = kh + dy
                        offsets.append(((c * 2 + y % 2) * (s.kernelWidth + 1) + kw + dx) * plane + y / 2 * pool.outWidth)
                    }
                }
            }
        }
        self.offsets = offsets
        let windows = windows
        origins = (0..<(vectors * 16)).map { w in
            w < windows
                ? Int32(truncatingIfNeeded: 2 * (w / pool.outWidth) * s.outWidth + 2 * (w % pool.outWidth)) : 0
        }
    }

    /// Floats of one plane: `rows × pooledWidth`, rounded up to 16.
    static func planeCount(_ s: Conv2dShape, pool: Pool2dShape) -> Int {
        ((pool.outHeight + s.kernelHeight / 2) * pool.outWidth + 15) / 16 * 16
    }

    /// Floats of one thread's planes, with 16 of slack (the last vector's loads reach up to
    /// 15 floats past its windows) and 15 to align them (`planes(in:)`); from the shapes
    /// alone, for sizing a workspace without building the layout.
    static func scratchCount(_ s: Conv2dShape, pool: Pool2dShape) -> Int {
        s.inChannels * 2 * (s.kernelWidth + 1) * planeCount(s, pool: pool) + 31
    }

    /// Where in `scratch` (`scratchCount(_:pool:)` floats) the planes start: the first 64-byte boundary.
    func planes(in scratch: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        let address = UInt(bitPattern: scratch)
        return UnsafeMutablePointer(bitPattern: (address + 63) & ~UInt(63))!
    }

    /// `sample (inChannels, height, width)` split into `planes` (the layout above), written
    /// in memory order: sixteen columns at a time from two 16-lane loads, each store's slack
    /// past its row overwritten by the next row's (the last plane's lands in the 16 floats
    /// of slack); rows past the input's last are zero. A load that would reach past the
    /// sample is made lane by lane.
    func splitPlanes(_ sample: UnsafePointer<Float>, into planes: UnsafeMutablePointer<Float>) {
        let s = shape, pooledWidth = pooledWidth, shifts = shifts, plane = plane
        let sampleCount = s.inChannels * s.height * s.width
        for c in 0..<s.inChannels {
            for q in 0..<2 {
                for h in 0..<shifts {
                    let destination = planes + ((c * 2 + q) * shifts + h) * plane
                    for i in 0..<rows {
                        let y = 2 * i + q, row = destination + i * pooledWidth
                        if y >= s.height {
                            row.update(repeating: 0, count: pooledWidth)
                            continue
                        }
                        let first = (c * s.height + y) * s.width + h
                        for j in stride(from: 0, to: pooledWidth, by: 16) {
                            let at = first + 2 * j
                            if at + 32 <= sampleCount {
                                let a = load16(sample + at), b = load16(sample + at + 16)
                                store16(SIMD16(lowHalf: a.evenHalf, highHalf: b.evenHalf), row + j)
                            } else {
                                for k in j..<min(j + 16, pooledWidth) { row[k] = sample[first + 2 * k] }
                            }
                        }
                    }
                }
            }
        }
        (planes + s.inChannels * 2 * shifts * plane).update(repeating: 0, count: 16)
    }

    /// One sample: `max_pool2d(conv2d(input) + bias)` (then ReLU when `relu`) into
    /// `output (outChannels, windows)` and, when given, the argmax (within the convolution's
    /// output plane) into `argmax`, from the planes `splitPlanes` wrote.
    ///
    /// - Parameters:
    ///   - weight: `(outChannels, inChannels · kernelHeight · kernelWidth)`, as given.
    ///   - planes: the planes `splitPlanes` wrote from this sample (`planes(in:)`).
    func convolvePoolSample(
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, planes: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>?, relu: Bool
    ) {
        let taps = shape.groupPatchSize, outChannels = shape.outChannels, windows = windows
        let down = Int32(truncatingIfNeeded: shape.outWidth)
        offsets.withUnsafeBufferPointer { offsets in
            origins.withUnsafeBufferPointer { origins in
                withUnsafeTemporaryAllocation(of: SIMD16<Float>.self, capacity: 16) { sums in
                    let offsets = offsets.baseAddress!, sums = sums.baseAddress!
                    for o0 in stride(from: 0, to: outChannels, by: 4) {
                        let valid = min(4, outChannels - o0)
                        // Channels past the last repeat it (computed, not stored).
                        let w0 = weight + o0 * taps, w1 = weight + min(o0 + 1, outChannels - 1) * taps
                        let w2 = weight + min(o0 + 2, outChannels - 1) * taps, w3 = weight + min(o0 + 3, outChannels - 1) * taps
                        @inline(__always) func start(_ k: Int) -> SIMD16<Float> {
                            SIMD16(repeating: bias.map { $0[min(o0 + k, outChannels - 1)] } ?? 0)
                        }
                        let s0 = start(0), s1 = start(1), s2 = start(2), s3 = start(3)
                        for v in 0..<vectors {
                            let base = planes + 16 * v
                            // Four channels (0–3) × four positions (top-left, top-right, bottom-left, bottom-right).
                            var a0 = s0, b0 = s0, c0 = s0, d0 = s0, a1 = s1, b1 = s1, c1 = s1, d1 = s1
                            var a2 = s2, b2 = s2, c2 = s2, d2 = s2, a3 = s3, b3 = s3, c3 = s3, d3 = s3
                            for t in 0..<taps {
                                let o = offsets + 4 * t
                                let tl = load16(base + o[0]), tr = load16(base + o[1])
                                let bl = load16(base + o[2]), br = load16(base + o[3])
                                var w = SIMD16<Float>(repeating: w0[t])
                                a0.addProduct(tl, w); b0.addProduct(tr, w); c0.addProduct(bl, w); d0.addProduct(br, w)
                                w = SIMD16(repeating: w1[t])
                                a1.addProduct(tl, w); b1.addProduct(tr, w); c1.addProduct(bl, w); d1.addProduct(br, w)
                                w = SIMD16(repeating: w2[t])
                                a2.addProduct(tl, w); b2.addProduct(tr, w); c2.addProduct(bl, w); d2.addProduct(br, w)
                                w = SIMD16(repeating: w3[t])
                                a3.addProduct(tl, w); b3.addProduct(tr, w); c3.addProduct(bl, w); d3.addProduct(br, w)
                            }
                            let first = 16 * v, count = min(16, windows - first)
                            let origin = UnsafeRawPointer(origins.baseAddress! + first).loadUnaligned(as: SIMD16<Int32>.self)
                            // Channel k's sums from `sums[4k ..< 4k + 4]`, its windows at `output` and
                            // `argmax` + (o0 + k) · windows + first (passed through memory: the pooling
                            // is not inlined, and sixteen-lane arguments went in pieces).
                            sums[0] = a0; sums[1] = b0; sums[2] = c0; sums[3] = d0
                            sums[4] = a1; sums[5] = b1; sums[6] = c1; sums[7] = d1
                            sums[8] = a2; sums[9] = b2; sums[10] = c2; sums[11] = d2
                            sums[12] = a3; sums[13] = b3; sums[14] = c3; sums[15] = d3
                            for k in 0..<valid {
                                let at = (o0 + k) * windows + first
                                emitWindowLanes(sums + 4 * k, topLeft: origin, rowStride: down, relu: relu, count: count,
                                                output: output + at, argmax: argmax.map { $0 + at })
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The 2×2 pool of sixteen windows whose four positions are `tl`, `tr`, `bl`, `br`, by
/// `poolFourWindowsOfTwo`'s rule and order: each row's right value taken where greater or
/// NaN, then the bottom row's where greater or NaN (the first maximum in row-major order
/// wins, the last NaN); with each window's index in the convolution's output plane.
@inlinable @inline(__always)
func poolWindowLanes(
    _ tl: SIMD16<Float>, _ tr: SIMD16<Float>, _ bl: SIMD16<Float>, _ br: SIMD16<Float>,
    topLeft: SIMD16<Int32>, rowStride: Int32
) -> (SIMD16<Float>, SIMD16<Int32>) {
    let right = (tr .> tl) .| (tr .!= tr), rightBelow = (br .> bl) .| (br .!= br)
    var top = tl, bottom = bl
    top.replace(with: tr, where: right)
    bottom.replace(with: br, where: rightBelow)
    let one = SIMD16<Int32>(repeating: 1)
    let topIndex = topLeft &+ (one & unsafeBitCast(right, to: SIMD16<Int32>.self))
    let bottomIndex = topLeft &+ SIMD16(repeating: rowStride) &+ (one & unsafeBitCast(rightBelow, to: SIMD16<Int32>.self))
    let below = (bottom .> top) .| (bottom .!= bottom)
    top.replace(with: bottom, where: below)
    return (top, topIndex ^ ((topIndex ^ bottomIndex) & unsafeBitCast(below, to: SIMD16<Int32>.self)))
}

/// Sixteen windows, their four positions' sums at `sums`, pooled (`poolWindowLanes`), then ReLU when `relu`, the first `count`
/// stored to `output` and, when given, their indices to `argmax`.
@usableFromInline @_transparent
func emitWindowLanes(
    _ sums: UnsafePointer<SIMD16<Float>>, topLeft: SIMD16<Int32>,
    rowStride: Int32, relu: Bool, count: Int, output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>?
) {
    let tl = sums[0], tr = sums[1], bl = sums[2], br = sums[3]
    var best: SIMD16<Float>
    if let argmax {
        let index: SIMD16<Int32>
        (best, index) = poolWindowLanes(tl, tr, bl, br, topLeft: topLeft, rowStride: rowStride)
        if count == 16 {
            UnsafeMutableRawPointer(argmax).storeBytes(of: index, as: SIMD16<Int32>.self)
        } else {
            for lane in 0..<count { argmax[lane] = index[lane] }
        }
    } else {
        best = poolWindowLanes(tl, tr, bl, br)
    }
    if relu { best.replace(with: 0, where: SIMD16<Float>() .> best) }  // NaN and -0 kept
    if count == 16 {
        store16(best, output)
    } else {
        for lane in 0..<count { output[lane] = best[lane] }
    }
}

/// `poolWindowLanes` without the indices (evaluation).
@inlinable @inline(__always)
func poolWindowLanes(_ tl: SIMD16<Float>, _ tr: SIMD16<Float>, _ bl: SIMD16<Float>, _ br: SIMD16<Float>) -> SIMD16<Float> {
    var top = tl, bottom = bl
    top.replace(with: tr, where: (tr .> tl) .| (tr .!= tr))
    bottom.replace(with: br, where: (br .> bl) .| (br .!= br))
    top.replace(with: bottom, where: (bottom .> top) .| (bottom .!= bottom))
    return top
}
#endif
