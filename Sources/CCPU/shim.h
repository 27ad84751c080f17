/* What the CPU is, read with CPUID where Swift cannot: not a library, inline functions. */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* Whether the CPU runs a 512-bit vector instruction as two 256-bit halves: AMD's family
   0x19 (Zen 3 has no AVX-512; Zen 4 double-pumps it), and earlier AMD families. Intel's
   AVX-512 cores and AMD's Zen 5 (family 0x1A) execute 512 bits at once. 0 on other
   architectures, and when CPUID does not answer. */
static inline int cpu_splits_512_bit_vectors(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned int a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    /* "AuthenticAMD" in EBX, EDX, ECX. */
    if (b != 0x68747541u || d != 0x69746e65u || c != 0x444d4163u) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    unsigned int family = (a >> 8) & 0xfu;
    if (family == 0xfu) family += (a >> 20) & 0xffu;
    return family <= 0x19u;
#else
    return 0;
#endif
}

/* The OpenBLAS core type (its OPENBLAS_CORETYPE names) of the widest kernels this CPU and its
   OS run: "SkylakeX" with AVX-512 F, DQ, BW and VL and the OS saving the 512-bit state,
   "Haswell" with AVX2 and FMA and the 256-bit state, else NULL (also on other
   architectures). Checked as OpenBLAS checks before it takes those kernels: CPUID for the
   instructions, XGETBV for the registers the OS saves. */
static inline const char *cpu_openblas_core(void) {
#if defined(__x86_64__)
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx || !fma) return 0;
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0x6u) != 0x6u) return 0;                  /* XMM and YMM state */
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);  /* F DQ BW VL */
    if (avx512 && (lo & 0xe6u) == 0xe6u) return "SkylakeX";  /* and opmask, ZMM state */
    if (avx2) return "Haswell";
    return 0;
#else
    return 0;
#endif
}
