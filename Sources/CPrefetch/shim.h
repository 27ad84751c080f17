/* Software prefetch, which Swift cannot express: asks for the cache line holding `address`
   to be brought into the level-2 cache (and the outer levels) without waiting for it. */
static inline void prefetch_to_l2(const void *address) { __builtin_prefetch(address, 0, 2); }
