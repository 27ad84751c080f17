// MARK: - Matrix products of the fully connected layers (AVX-512)

// `linear`'s three products, for builds with 16-lane vectors (`MNIST_ISA_AVX512`; other
// builds call OpenBLAS). OpenBLAS packs both operands of every call into its own panels; at a
// LeNet's sizes (64 × 800 by 800 × 500) the copies took about a third of its time (`perf`:
// sgemm_incopy and sgemm_itcopy beside sgemm_kernel). Here every product is one kernel over
// operands as they lie:
//
//     C[i, j] = start[i] + Σ_p a(i, p) · B[p, j],   a(i, p) = a[i · aRow + p · aDepth]
//
// six rows × 64 columns at a time, 24 sums in registers, each row's `a` broadcast from
// memory into its fused multiply-adds and four 16-lane loads of `B`'s row `p` shared by the
// six. `B`'s rows must be contiguous in `j`: the forward product (`x · Wᵀ`, neither operand
// contiguous along an output index) runs on `xᵀ`, written once per call, and stores its
// tile transposed.
//
// Each output is one chain of fused multiply-adds in `p` order from its start (the bias or
// 0), computed by one thread: the results do not depend on the thread count. They differ
// from OpenBLAS's, whose kernels split and order the sums their own way (and differ between
// its Haswell and Skylake-X kernels).
//
// In every build, the two gradient products of a gradient that is mostly zeros (behind
// ReLU) skip its zeros (`sparseRowProduct`, below), each output the same chain less its
// `0 · B[p, j]` terms.

#if MNIST_ISA_AVX512

/// Six rows of a product tile: each row's operand `a(i, ·)` and its first term, broadcast.
/// A block of fewer than six rows repeats its last (its sums are computed, not stored).
@usableFromInline
struct SixRows {
    @usableFromInline typealias Six<T> = (T, T, T, T, T, T)
    @usableFromInline let pointers: Six<UnsafePointer<Float>>
    @usableFromInline let starts: Six<SIMD16<Float>>

    /// Rows `first ..< min(first + 6, m)` of `op`, starting from `start` (nil: 0).
    @inlinable @inline(__always)
    init(_ op: ProductOperand, first: Int, m: Int, start: UnsafePointer<Float>?) {
        @inline(__always) func a(_ k: Int) -> UnsafePointer<Float> { op.a + min(first + k, m - 1) * op.aRow }
        @inline(__always) func s(_ k: Int) -> SIMD16<Float> { SIMD16(repeating: start?[min(first + k, m - 1)] ?? 0) }
        pointers = (a(0), a(1), a(2), a(3), a(4), a(5))
        starts = (s(0), s(1), s(2), s(3), s(4), s(5))
    }
}

/// `tile[r · 64 + c] = start[r] + Σ_p a(r, p) · B[p, c]` for the six `rows` and 64 columns
/// of `b` (`ldb` floats between rows).
@inlinable
func productTile6x64(
    _ op: ProductOperand, rows: SixRows, b: UnsafePointer<Float>, ldb: Int, tile: UnsafeMutablePointer<Float>
) {
    let depth = op.depth, aDepth = op.aDepth
    let (a0, a1, a2, a3, a4, a5) = rows.pointers, (s0, s1, s2, s3, s4, s5) = rows.starts
    var c00 = s0, c01 = s0, c02 = s0, c03 = s0
    var c10 = s1, c11 = s1, c12 = s1, c13 = s1
    var c20 = s2, c21 = s2, c22 = s2, c23 = s2
    var c30 = s3, c31 = s3, c32 = s3, c33 = s3
    var c40 = s4, c41 = s4, c42 = s4, c43 = s4
    var c50 = s5, c51 = s5, c52 = s5, c53 = s5
    var p = 0, d = 0
    while p < depth {
        let row = b + p * ldb
        let b0 = load16(row), b1 = load16(row + 16), b2 = load16(row + 32), b3 = load16(row + 48)
        var x: SIMD16<Float>
        x = SIMD16(repeating: a0[d]); c00.addProduct(x, b0); c01.addProduct(x, b1); c02.addProduct(x, b2); c03.addProduct(x, b3)
        x = SIMD16(repeating: a1[d]); c10.addProduct(x, b0); c11.addProduct(x, b1); c12.addProduct(x, b2); c13.addProduct(x, b3)
        x = SIMD16(repeating: a2[d]); c20.addProduct(x, b0); c21.addProduct(x, b1); c22.addProduct(x, b2); c23.addProduct(x, b3)
        x = SIMD16(repeating: a3[d]); c30.addProduct(x, b0); c31.addProduct(x, b1); c32.addProduct(x, b2); c33.addProduct(x, b3)
        x = SIMD16(repeating: a4[d]); c40.addProduct(x, b0); c41.addProduct(x, b1); c42.addProduct(x, b2); c43.addProduct(x, b3)
        x = SIMD16(repeating: a5[d]); c50.addProduct(x, b0); c51.addProduct(x, b1); c52.addProduct(x, b2); c53.addProduct(x, b3)
        p += 1
        d += aDepth
    }
    storeRow(c00, c01, c02, c03, tile)
    storeRow(c10, c11, c12, c13, tile + 64)
    storeRow(c20, c21, c22, c23, tile + 128)
    storeRow(c30, c31, c32, c33, tile + 192)
    storeRow(c40, c41, c42, c43, tile + 256)
    storeRow(c50, c51, c52, c53, tile + 320)
}

/// Four 16-lane vectors, one tile row of 64 floats.
@inlinable @inline(__always)
func storeRow(_ v0: SIMD16<Float>, _ v1: SIMD16<Float>, _ v2: SIMD16<Float>, _ v3: SIMD16<Float>,
              _ row: UnsafeMutablePointer<Float>) {
    store16(v0, row); store16(v1, row + 16); store16(v2, row + 32); store16(v3, row + 48)
}

/// `productTile6x64` for 48 columns: the evaluation's batch of 100 (112 padded columns) in
/// one 64-wide and one 48-wide tile instead of three 16-wide ones, each of whose loads of `B`
/// served six multiply-adds instead of eighteen.
@inlinable
func productTile6x48(
    _ op: ProductOperand, rows: SixRows, b: UnsafePointer<Float>, ldb: Int, tile: UnsafeMutablePointer<Float>
) {
    let depth = op.depth, aDepth = op.aDepth
    let (a0, a1, a2, a3, a4, a5) = rows.pointers, (s0, s1, s2, s3, s4, s5) = rows.starts
    var c00 = s0, c01 = s0, c02 = s0
    var c10 = s1, c11 = s1, c12 = s1
    var c20 = s2, c21 = s2, c22 = s2
    var c30 = s3, c31 = s3, c32 = s3
    var c40 = s4, c41 = s4, c42 = s4
    var c50 = s5, c51 = s5, c52 = s5
    var p = 0, d = 0
    while p < depth {
        let row = b + p * ldb
        let b0 = load16(row), b1 = load16(row + 16), b2 = load16(row + 32)
        var x: SIMD16<Float>
        x = SIMD16(repeating: a0[d]); c00.addProduct(x, b0); c01.addProduct(x, b1); c02.addProduct(x, b2)
        x = SIMD16(repeating: a1[d]); c10.addProduct(x, b0); c11.addProduct(x, b1); c12.addProduct(x, b2)
        x = SIMD16(repeating: a2[d]); c20.addProduct(x, b0); c21.addProduct(x, b1); c22.addProduct(x, b2)
        x = SIMD16(repeating: a3[d]); c30.addProduct(x, b0); c31.addProduct(x, b1); c32.addProduct(x, b2)
        x = SIMD16(repeating: a4[d]); c40.addProduct(x, b0); c41.addProduct(x, b1); c42.addProduct(x, b2)
        x = SIMD16(repeating: a5[d]); c50.addProduct(x, b0); c51.addProduct(x, b1); c52.addProduct(x, b2)
        p += 1
        d += aDepth
    }
    store16(c00, tile); store16(c01, tile + 16); store16(c02, tile + 32)
    store16(c10, tile + 64); store16(c11, tile + 80); store16(c12, tile + 96)
    store16(c20, tile + 128); store16(c21, tile + 144); store16(c22, tile + 160)
    store16(c30, tile + 192); store16(c31, tile + 208); store16(c32, tile + 224)
    store16(c40, tile + 256); store16(c41, tile + 272); store16(c42, tile + 288)
    store16(c50, tile + 320); store16(c51, tile + 336); store16(c52, tile + 352)
}

/// `productTile6x64` for 16 columns.
@inlinable
func productTile6x16(
    _ op: ProductOperand, rows: SixRows, b: UnsafePointer<Float>, ldb: Int, tile: UnsafeMutablePointer<Float>
) {
    let depth = op.depth, aDepth = op.aDepth
    let (a0, a1, a2, a3, a4, a5) = rows.pointers, (s0, s1, s2, s3, s4, s5) = rows.starts
    var c0 = s0, c1 = s1, c2 = s2, c3 = s3, c4 = s4, c5 = s5
    var p = 0, d = 0
    while p < depth {
        let b0 = load16(b + p * ldb)
        c0.addProduct(SIMD16(repeating: a0[d]), b0); c1.addProduct(SIMD16(repeating: a1[d]), b0)
        c2.addProduct(SIMD16(repeating: a2[d]), b0); c3.addProduct(SIMD16(repeating: a3[d]), b0)
        c4.addProduct(SIMD16(repeating: a4[d]), b0); c5.addProduct(SIMD16(repeating: a5[d]), b0)
        p += 1
        d += aDepth
    }
    store16(c0, tile); store16(c1, tile + 64); store16(c2, tile + 128)
    store16(c3, tile + 192); store16(c4, tile + 256); store16(c5, tile + 320)
}

/// `C[i, j] = start(i) + Σ_p a(i, p) · B[p, j]` for `i < m`, `j < n`, split over the
/// threads by tiles of 6 rows × 64 columns (then one of 48, then 16, then one column at a
/// time), each
/// tile's result handed to `store(rows, columns, tile)` (`tile[r · 64 + c]` for row
/// `rows.lowerBound + r` and column `columns.lowerBound + c`).
///
/// - Parameters:
///   - b: `(depth, n)`, `ldb` floats between rows.
///   - start: each row's first term (a bias), or nil for 0.
@inlinable
func rowProduct(
    _ op: ProductOperand, m: Int, n: Int, b: UnsafePointer<Float>, ldb: Int, start: UnsafePointer<Float>?,
    store: (_ rows: Range<Int>, _ columns: Range<Int>, _ tile: UnsafePointer<Float>) -> Void
) {
    guard m > 0, n > 0 else { return }
    let rowBlocks = (m + 5) / 6
    // Column blocks: 64 wide, then one 48 wide, then 16 wide, then the last columns (fewer
    // than 16) one by one.
    var columnBlocks: [Range<Int>] = []
    var j = 0
    while j + 64 <= n { columnBlocks.append(j..<(j + 64)); j += 64 }
    if j + 48 <= n { columnBlocks.append(j..<(j + 48)); j += 48 }
    while j + 16 <= n { columnBlocks.append(j..<(j + 16)); j += 16 }
    let narrow = j..<n
    let tiles = columnBlocks.count * rowBlocks, items = tiles + (narrow.isEmpty ? 0 : 1)
    // About 0.2 MFLOP per chunk at least, a depth under 32 counted as 32: a shallow product's
    // time is in storing its tiles (fc2's input gradient, depth 10 and 64 × 500 outputs, ran
    // on the calling thread: 20 µs of a LeNet step at 2 threads, `perf`).
    let minimum = max(1, 200_000 / max(1, 6 * 64 * max(op.depth, 32)))
    let chunks = max(1, min(Parallelism.threadCount, items / minimum))
    // The threads take the next few tiles until none are left (`forEachBlock`), in column-block
    // order, so that a thread slowed by the machine's other work does not hold the other back
    // (equal static column ranges: fc1's backward products 0.32-0.36 ms at 2 threads, taking
    // tiles 0.29-0.31; `mnist-bench --ops --threads 2` on a Xeon with AVX-512). Each output is
    // computed by one thread either way: the results do not depend on the split.
    let grain = max(1, items / (8 * chunks))
    columnBlocks.withUnsafeBufferPointer { columnBlocks in
        Parallelism.forEachBlock(items, chunks: chunks, grain: grain) { _, range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 6 * 64) { tile in
                let tile = tile.baseAddress!
                for t in range {
                    if t == tiles {
                        // The last columns, each output one chain in p order.
                        for i in 0..<m {
                            for jj in narrow {
                                var sum = start?[i] ?? 0
                                for p in 0..<op.depth {
                                    sum = sum.addingProduct(op.a[i * op.aRow + p * op.aDepth], b[p * ldb + jj])
                                }
                                tile[0] = sum
                                store(i..<(i + 1), jj..<(jj + 1), tile)
                            }
                        }
                        continue
                    }
                    let columns = columnBlocks[t / rowBlocks], r0 = t % rowBlocks * 6
                    let rows = r0..<min(r0 + 6, m)
                    let six = SixRows(op, first: r0, m: m, start: start)
                    if columns.count == 64 {
                        productTile6x64(op, rows: six, b: b + columns.lowerBound, ldb: ldb, tile: tile)
                    } else if columns.count == 48 {
                        productTile6x48(op, rows: six, b: b + columns.lowerBound, ldb: ldb, tile: tile)
                    } else {
                        productTile6x16(op, rows: six, b: b + columns.lowerBound, ldb: ldb, tile: tile)
                    }
                    store(rows, columns, tile)
                }
            }
        }
    }
}

#endif

// MARK: - The products of `linear`

/// The operand `a(i, p) = a[i · aRow + p · aDepth]` and the depth of a product.
@usableFromInline
struct ProductOperand {
    @usableFromInline let a: UnsafePointer<Float>
    @usableFromInline let aRow: Int, aDepth: Int, depth: Int

    @inlinable init(_ a: UnsafePointer<Float>, aRow: Int, aDepth: Int, depth: Int) {
        (self.a, self.aRow, self.aDepth, self.depth) = (a, aRow, aDepth, depth)
    }
}

// MARK: Sparse products

/// Rows of `B` that `sparseRowProduct` multiplies into its sums at a time: a block of eight
/// vectors of 64 rows (32 KB with 16 lanes) stays in L1 while every row of a work item uses
/// it. LeNet's fc1 input gradient (`mnist-bench --ops --threads 1` of a build reading the span
/// from the environment, not committed; half of the gradient nonzero, 3 to 7 alternating runs
/// each): 0.43 ms in one span of all 500 rows, 0.33-0.35 in spans of 48 or 64, 0.34-0.41 in
/// spans of 32, 0.38-0.44 in spans of 16; its weight gradient (64 rows deep) is one span.
@inlinable var sparseProductSpan: Int { 64 }

/// Floats of workspace `sparseRowProduct` needs for `rows` rows of depth `depth`: each row's
/// nonzero values and their indices (`rows · depth` each), and where each row's list crosses
/// each multiple of `sparseProductSpan`.
@inlinable
func sparseRowProductWorkspaceCount(rows: Int, depth: Int) -> Int {
    2 * rows * depth + rows * ((depth + sparseProductSpan - 1) / sparseProductSpan + 1)
}

/// `C[i, j] = Σ_p a(i, p) · B[p, j]` for `i < m`, `j < n` (`n` a multiple of the vector's
/// lanes, `PatchVector`: 16 with AVX-512, else 8), from the nonzero `a(i, p)` only: each
/// output is one chain of fused multiply-adds in `p` order from 0 (`rowProduct`'s, in 16-lane
/// builds) without its terms `0 · B[p, j]`, which add nothing to a finite sum, so the bits
/// are the chain's. Unlike PyTorch's product, an infinite or NaN `B[p, j]` whose `a(i, p)` is
/// zero does not reach the output (a NaN or infinite `a(i, p)` does). Each row's nonzeros are
/// listed once (split over the threads by rows). Then the work goes in items of a block of
/// up to eight vectors of `B`'s columns and a few rows, taken in column order so that the
/// block's strip of `B` stays in L2 while all rows use it (in row order when all of `B` is
/// small); within an item, `sparseProductSpan` rows of `B` at a time, so that they stay in
/// L1 while the item's rows use them (the sums stored and reloaded between spans, which
/// keeps each chain's order). Each output is computed by one thread.
///
/// - Parameters:
///   - b: `(depth, n)`, `ldb` floats between rows; `c`: `(m, n)`, `ldc` floats between rows.
///   - workspace: `sparseRowProductWorkspaceCount(rows: m, depth: op.depth)` floats.
@inlinable
func sparseRowProduct(
    _ op: ProductOperand, m: Int, n: Int, b: UnsafePointer<Float>, ldb: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int, workspace: UnsafeMutablePointer<Float>
) {
    let lanes = PatchVector.scalarCount
    precondition(n % lanes == 0, "sparseRowProduct: \(n) columns, not a multiple of \(lanes)")
    guard m > 0, n > 0 else { return }
    let depth = op.depth, span = sparseProductSpan, spans = (depth + span - 1) / span, value = workspace
    let ints = sparseRowProductWorkspaceCount(rows: m, depth: depth) - m * depth
    (workspace + m * depth).withMemoryRebound(to: Int32.self, capacity: ints) { ints in
        // Row i's nonzeros: value and p at i · depth ..< bound[i · (spans + 1) + spans], those
        // of span r from bound[i · (spans + 1) + r].
        let index = ints, bound = ints + m * depth
        // Split once there are 8,192 entries a thread (LeNet's fc1: both products).
        Parallelism.forEachRange(m, minimumPerChunk: max(1, 8192 / max(1, depth))) { rows in
            for i in rows {
                let a = op.a + i * op.aRow, bounds = bound + i * (spans + 1)
                var count = i * depth
                for r in 0..<spans {
                    bounds[r] = Int32(truncatingIfNeeded: count)
                    var d = r * span * op.aDepth
                    for p in (r * span)..<min(r * span + span, depth) {
                        // Written always, kept when nonzero (no branch to mispredict).
                        value[count] = a[d]
                        index[count] = Int32(truncatingIfNeeded: p)
                        count &+= a[d] != 0 ? 1 : 0
                        d &+= op.aDepth
                    }
                }
                bounds[spans] = Int32(truncatingIfNeeded: count)
            }
        }
        // Work items: (column block, block of rows). In column order, so that a block's strip
        // of `B` stays in L2 while all rows use it; in row order when all of `B` fits in L2
        // with room to spare (at most 65,536 floats: LeNet's fc1 weight gradient, whose `B` is
        // the 64 × 800 input), so that each thread writes whole rows of `C`, and with
        // `forEachBlock`'s two ends about the same rows every step, the rows the SGD step then
        // updates on the same core. Row order alone, LeNet at 2 threads on the 2-core Xeon
        // (`scripts/ab_steps.sh 10`): 5.038 → 4.811 ms a step, shorter in 7 of 10.
        let vectors = n / lanes, columnBlocks = (vectors + 7) / 8
        // Sixteen rows an item (each span of `B` loaded into L1 serves them all), fewer only
        // when the items would not give each thread four.
        let rowItemsWanted = (4 * max(1, Parallelism.threadCount) + columnBlocks - 1) / columnBlocks
        let rowsPerItem = max(1, min(16, m / rowItemsWanted))
        let rowItems = (m + rowsPerItem - 1) / rowsPerItem, items = columnBlocks * rowItems
        let chunks = max(1, min(Parallelism.threadCount, items)), rowOrder = depth * n <= 65_536
        Parallelism.forEachBlock(items, chunks: chunks, grain: 1) { _, range in
            for item in range {
                let (block, rowItem) = rowOrder ? (item % columnBlocks, item / columnBlocks) : (item / rowItems, item % rowItems)
                let firstRow = rowItem * rowsPerItem
                let rows = firstRow..<min(firstRow + rowsPerItem, m)
                // Eight vectors, or what the last block has left in widths `addScaledRows` takes
                // (16 lanes, 800 floats: six blocks of 8, then 2).
                let first = block * 8
                forEachVectorBlock(min(8, vectors - first)) { step, offset in
                    let v = first + offset
                    for r in 0..<spans {
                        for i in rows {
                            let bounds = bound + i * (spans + 1), entries = Int(bounds[r])..<Int(bounds[r + 1])
                            guard r == 0 || !entries.isEmpty else { continue }
                            addScaledRows(blockVectors: step, sums: c + i * ldc + v * lanes, fromZero: r == 0,
                                          entries: entries, scale: value, row: index, rows: b + v * lanes,
                                          rowStride: ldb)
                        }
                    }
                }
            }
        }
    }
}

/// Whether `linearForward` and its gradients run on `rowProduct` (16-lane builds) rather
/// than OpenBLAS: each output then is one chain of fused multiply-adds in order from its
/// start, the same at any thread count.
public let linearUsesRowProduct: Bool = {
    #if MNIST_ISA_AVX512
    return true
    #else
    return false
    #endif
}()

/// Floats of workspace `linearForward` needs for `n` samples of `k` inputs: `inputᵀ` with
/// the samples rounded up to 16 (16-lane builds), else none.
public func linearForwardWorkspaceCount(n: Int, k: Int) -> Int {
    #if MNIST_ISA_AVX512
    return k * ((n + 15) / 16 * 16)
    #else
    return 0
    #endif
}

/// `output (n, m) = input (n, k) · weight (m, k)ᵀ + bias (m)` (PyTorch's `addmm`; no bias
/// without one), then ReLU when `relu` (`reluForward`'s rule). With 16-lane vectors by
/// `rowProduct` on `inputᵀ` (written into `workspace`, `linearForwardWorkspaceCount(n:k:)`
/// floats, best 64-byte aligned: the kernel's 16-lane loads of its rows then stay within a
/// cache line), the ReLU taken as the tiles are stored; else through OpenBLAS (the bias
/// copied into `output` first), then `reluForward`; split over the threads.
public func linearForward(
    n: Int, k: Int, m: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    output: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>, relu: Bool = false
) {
    guard n > 0, m > 0 else { return }
    #if MNIST_ISA_AVX512
    let padded = (n + 15) / 16 * 16
    let transposed = workspace
    // Split over the threads by blocks of 8 samples (rows), the padding by the last.
    let rowBlocks = (n + 7) / 8
    Parallelism.forEachChunk(rowBlocks, minimumPerChunk: max(1, 8192 / max(1, 8 * k))) { _, blocks in
        let rows = blocks.lowerBound * 8..<min(blocks.upperBound * 8, n)
        transposeRows(input + rows.lowerBound * k, rows: rows.count, columns: k, sourceStride: k,
                      into: transposed + rows.lowerBound, destinationStride: padded)
        if rows.upperBound == n && padded > n {
            for p in 0..<k { (transposed + p * padded + n).update(repeating: 0, count: padded - n) }
        }
    }
    // Rows are the output features, columns the samples: the tile is stored transposed.
    rowProduct(ProductOperand(weight, aRow: k, aDepth: 1, depth: k), m: m, n: padded, b: transposed, ldb: padded,
               start: bias) { rows, columns, tile in
        for c in columns.lowerBound..<min(columns.upperBound, n) {
            let destination = output + c * m, column = tile + (c - columns.lowerBound)
            if relu {
                for r in rows { destination[r] = reluValue(column[(r - rows.lowerBound) * 64]) }
            } else {
                for r in rows { destination[r] = column[(r - rows.lowerBound) * 64] }
            }
        }
    }
    #else
    if let bias {
        for row in 0..<n { (output + row * m).update(from: bias, count: m) }
    }
    parallelSgemm(transposeB: true, m: n, n: m, k: k, a: input, b: weight, beta: bias == nil ? 0 : 1, c: output)
    if relu { reluForward(output, output, count: n * m) }
    #endif
}

/// The gradient of `linearForward(..., relu: true)` with respect to its product:
/// `masked[i] = output[i] > 0 ? gradOutput[i] : 0` (`reluBackward`'s rule) for the `n × m`
/// outputs, and whether that is sparse enough for the sparse products
/// (`linearGradientIsSparse`'s rule), its nonzeros counted in the same pass, split over the
/// threads (an integer count: the same at any thread count). ReLU's backward and the scan of
/// its result were two passes on the calling thread for LeNet's fc1 (64 × 500).
public func linearReluGradient(
    n: Int, k: Int, m: Int, gradOutput: UnsafePointer<Float>, output: UnsafePointer<Float>,
    masked: UnsafeMutablePointer<Float>
) -> Bool {
    let nonzeros = nonzeroCount(n * m, minimumVectorsPerChunk: 1024, vector: { v in
        let kept = reluGradient(load8(gradOutput + 8 * v), output: load8(output + 8 * v))
        store8(kept, masked + 8 * v)
        return kept
    }, element: { i in
        masked[i] = reluGradient(gradOutput[i], output: output[i])
        return masked[i]
    })
    return linearGradientIsSparse(n: n, k: k, m: m, nonzeros: nonzeros)
}

/// Floats of workspace `linearBackwardInput` and `linearBackwardWeight` need for `n`
/// samples, `k` inputs and `m` outputs: the nonzeros of the gradient, listed
/// (`sparseRowProduct`), when `k` is a whole number of vectors; else none.
public func linearBackwardWorkspaceCount(n: Int, k: Int, m: Int) -> Int {
    k % PatchVector.scalarCount == 0
        ? max(sparseRowProductWorkspaceCount(rows: n, depth: m), sparseRowProductWorkspaceCount(rows: m, depth: n)) : 0
}

/// Whether `linearBackwardInput` and `linearBackwardWeight` multiply `gradOutput (n, m)`
/// from its nonzeros alone (`sparseRowProduct`; `k` a whole number of vectors): when
/// at most 60% of it is nonzero. Behind ReLU about half of it or more is zero (LeNet's fc1 in
/// training: 50% at the start, 59-63% from step 200 on; `scripts/relu_sparsity.py`).
/// With every entry a product of its own, each multiply-add loads its operand instead of
/// sharing it with five other rows as `rowProduct`'s tiles do, so the sparse path wins only
/// well below full density. The lists count in Int32: at most 2³¹ - 1 entries. Like
/// `conv2dGradientIsSparse`, scanned once by the caller of both products and passed to each.
public func linearGradientIsSparse(n: Int, k: Int, m: Int, gradOutput: UnsafePointer<Float>) -> Bool {
    linearGradientIsSparse(n: n, k: k, m: m, nonzeros: nonzeroCount(gradOutput, count: n * m))
}

/// `linearGradientIsSparse` for a gradient whose nonzeros were counted (`nonzeros`).
func linearGradientIsSparse(n: Int, k: Int, m: Int, nonzeros: Int) -> Bool {
    linearBackwardWorkspaceCount(n: n, k: k, m: m) > 0 && n * m >= 4096 && n * m <= Int(Int32.max)
        && nonzeros * 10 <= n * m * 6
}

/// `gradInput (n, k) = gradOutput (n, m) · weight (m, k)`: the input gradient of
/// `linearForward`. A gradient mostly zero (behind ReLU; `linearGradientIsSparse`, scanned
/// here when `sparseGradient` is nil) is multiplied from its nonzeros alone
/// (`sparseRowProduct`: with 16-lane vectors the bits of `rowProduct`, else each output one
/// chain of fused multiply-adds in order where OpenBLAS orders the sums its own way);
/// `workspace` then holds `linearBackwardWorkspaceCount(n:k:m:)` floats (unused otherwise).
public func linearBackwardInput(
    n: Int, k: Int, m: Int, gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    gradInput: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>, sparseGradient: Bool? = nil
) {
    if sparseGradient ?? linearGradientIsSparse(n: n, k: k, m: m, gradOutput: gradOutput) {
        sparseRowProduct(ProductOperand(gradOutput, aRow: m, aDepth: 1, depth: m), m: n, n: k, b: weight, ldb: k,
                         c: gradInput, ldc: k, workspace: workspace)
        return
    }
    #if MNIST_ISA_AVX512
    rowProduct(ProductOperand(gradOutput, aRow: m, aDepth: 1, depth: m), m: n, n: k, b: weight, ldb: k, start: nil) {
        rows, columns, tile in
        for r in rows {
            copyFloats(tile + (r - rows.lowerBound) * 64, gradInput + r * k + columns.lowerBound, columns.count)
        }
    }
    #else
    parallelSgemm(m: n, n: k, k: m, a: gradOutput, b: weight, c: gradInput)
    #endif
}

/// `gradWeight (m, k) = gradOutput (n, m)ᵀ · input (n, k)`: the weight gradient of
/// `linearForward`; a sparse gradient as in `linearBackwardInput`.
public func linearBackwardWeight(
    n: Int, k: Int, m: Int, gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
    gradWeight: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>, sparseGradient: Bool? = nil
) {
    if sparseGradient ?? linearGradientIsSparse(n: n, k: k, m: m, gradOutput: gradOutput) {
        sparseRowProduct(ProductOperand(gradOutput, aRow: 1, aDepth: m, depth: n), m: m, n: k, b: input, ldb: k,
                         c: gradWeight, ldc: k, workspace: workspace)
        return
    }
    #if MNIST_ISA_AVX512
    rowProduct(ProductOperand(gradOutput, aRow: 1, aDepth: m, depth: n), m: m, n: k, b: input, ldb: k, start: nil) {
        rows, columns, tile in
        for r in rows {
            copyFloats(tile + (r - rows.lowerBound) * 64, gradWeight + r * k + columns.lowerBound, columns.count)
        }
    }
    #else
    parallelSgemm(transposeA: true, m: m, n: k, k: n, a: gradOutput, b: input, c: gradWeight)
    #endif
}
