/* What the CPU is, read with CPUID where Swift cannot: not a library, one inline function. */
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
