// Compiles a hot loop twice on x86-64 (baseline SSE2 and AVX2) and picks the variant at load
// time, so one binary runs everywhere and still uses 256-bit vectors where the CPU has them.
// Only for loops whose results do not depend on the vector width (no reassociation: the build
// keeps -ffp-contract=off and no fast-math, so every variant computes the same bits).
#ifndef QCAL_KERNELS_SIMD_H_
#define QCAL_KERNELS_SIMD_H_

#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define QCAL_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef QCAL_VECTOR_CLONES
#define QCAL_VECTOR_CLONES
#endif

#endif  // QCAL_KERNELS_SIMD_H_
