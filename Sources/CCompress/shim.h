/* AVX-512's compress (vcompressps, vpcompressd), which Swift cannot express: the kept lanes
   of a vector packed to its front. Called only from code built for AVX-512
   (MNIST_ISA_AVX512 in Swift); the target attribute lets every build compile it. SwiftPM
   does not see edits to this header: touch Sources/Kernels/Conv2dSparse.swift after one. */
#include <immintrin.h>
#include <stdint.h>

/* Appends to value[] and index[] (from their first element) the entries w < count, in
   order, whose gradient[w] is not zero (NaN kept) and, when keep_where is not NULL, whose
   keep_where[w] is not <= 0 (NaN kept): the value gradient[w] and the index indices[w]
   (or w when indices is NULL). Returns how many it appended. Writes only
   value[0 ..< returned] and index[0 ..< returned]: the packed vectors are stored with a
   mask (a compressing store to memory is microcoded on Zen 4). */
__attribute__((target("avx512f"))) static inline int32_t
compress_nonzeros(const float *gradient, const int32_t *indices, const float *keep_where,
                  int32_t count, float *value, int32_t *index) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int32_t kept = 0;
    for (int32_t w = 0; w < count; w += 16) {
        __mmask16 valid = count - w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - w)) - 1);
        __m512 g = _mm512_maskz_loadu_ps(valid, gradient + w);
        __mmask16 keep = _mm512_mask_cmp_ps_mask(valid, g, zero, _CMP_NEQ_UQ);
        if (keep_where) {
            __m512 r = _mm512_maskz_loadu_ps(valid, keep_where + w);
            keep = _mm512_mask_cmp_ps_mask(keep, r, zero, _CMP_NLE_UQ);
        }
        __m512i i = indices ? _mm512_maskz_loadu_epi32(valid, indices + w)
                            : _mm512_add_epi32(_mm512_set1_epi32(w), lanes);
        int n = __builtin_popcount((unsigned)keep);
        __mmask16 front = (__mmask16)((1u << n) - 1);
        _mm512_mask_storeu_ps(value + kept, front, _mm512_maskz_compress_ps(keep, g));
        _mm512_mask_storeu_epi32(index + kept, front, _mm512_maskz_compress_epi32(keep, i));
        kept += n;
    }
    return kept;
}
