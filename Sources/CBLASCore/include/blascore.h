// CPU feature detection and OpenBLAS core selection.
//
// Debian's OpenBLAS is built with DYNAMIC_ARCH: when the library loads it picks
// one set of kernels (a "core") for the CPU, or the one named by the
// environment variable OPENBLAS_CORETYPE. Its table of CPU models is fixed at
// release time, and OpenBLAS 0.3.21 falls back to its generic SSE3 "Prescott"
// kernels on Intel models it does not know (e.g. family 6 model 207), 4-5x
// slower than its AVX-512 kernels. The library cannot set the variable before
// OpenBLAS's own constructor runs, so these functions let it re-run OpenBLAS's
// core selection once, before the first matrix product.
#ifndef ALEXNET_BLASCORE_H
#define ALEXNET_BLASCORE_H

#ifdef __cplusplus
extern "C" {
#endif

/// Vector instruction levels the CPU and the operating system both support.
/// 0: not an x86-64 CPU (or unknown); 1: SSE3, the x86-64 baseline OpenBLAS's
/// oldest 64-bit kernels need; 2: AVX; 3: AVX2 and FMA3; 4: AVX-512 F, CD, BW,
/// DQ and VL with the zmm state enabled by the OS (what OpenBLAS's SkylakeX
/// kernels use).
int alexnet_cpu_vector_level(void);

/// 1 if the CPU reports AVX512_BF16 (CPUID leaf 7, sub-leaf 1, EAX bit 5).
int alexnet_cpu_has_avx512_bf16(void);

/// The CPU's brand string (CPUID leaves 0x80000002-4), or "" where there is none.
/// Writes at most `capacity` bytes including the terminating zero.
void alexnet_cpu_brand(char *buffer, int capacity);

/// x86 family, model (with the extended fields folded in, as Linux prints them)
/// and vendor ("GenuineIntel", "AuthenticAMD"); -1 and "" elsewhere.
void alexnet_cpu_signature(int *family, int *model, char *vendor, int vendorCapacity);

/// The name OpenBLAS gives the core it runs now (openblas_get_corename).
const char *alexnet_blas_corename(void);

/// The library's configuration string (openblas_get_config).
const char *alexnet_blas_config(void);

/// Whether this OpenBLAS can re-select its core (it exports
/// gotoblas_dynamic_init and gotoblas_dynamic_quit: a DYNAMIC_ARCH build).
int alexnet_blas_can_switch_core(void);

/// Re-runs OpenBLAS's core selection with OPENBLAS_CORETYPE set to `name`,
/// then restores the variable to what it was. Call only before the first BLAS
/// call of the process. Returns 0 when the selection ran, -1 when this
/// OpenBLAS cannot switch. Check alexnet_blas_corename() for the result.
int alexnet_blas_switch_core(const char *name);

/// openblas_set_num_threads.
void alexnet_blas_set_threads(int threads);

#ifdef __cplusplus
}
#endif

#endif
