// Square roots a vector at a time, for LRN's s^-0.75.
//
// Swift lowers `SIMD8<Float>.squareRoot()` lane by lane, each lane a scalar
// `sqrtss` behind a branch to `sqrtf` for errno (perf: most of LRN's time).
// These loops use the CPU's vector square root (SSE2, AVX or AVX-512 on
// x86-64, whichever is the widest the CPU and the OS support; NEON on arm64),
// which is correctly rounded like the scalar one, as are the product and the
// quotient, so every result is bitwise the scalar expression's at any width.
#ifndef ALEXNET_VECTORMATH_H
#define ALEXNET_VECTORMATH_H

#ifdef __cplusplus
extern "C" {
#endif

/// `out[i] = 1 / (r * sqrt(r))` with `r = sqrt(s[i])`, for `i` in `0..<count`,
/// in that order of operations (LRN's `s^-0.75`). `out` may be `s`.
void alexnet_inverse_three_quarters_f32(const float *s, float *out, long count);

/// As `alexnet_inverse_three_quarters_f32`, in double precision.
void alexnet_inverse_three_quarters_f64(const double *s, double *out, long count);

/// The vector widths the two functions above can use, as levels of
/// `alexnet_cpu_vector_level()`: 0 scalar or NEON or SSE2 (the baseline), 2
/// AVX, 4 AVX-512.
/// `alexnet_vectormath_level()` is the one they use: the widest that the CPU
/// and the OS support (read once).
int alexnet_vectormath_level(void);

/// As `alexnet_inverse_three_quarters_f32` at vector level `level`, lowered to
/// `alexnet_vectormath_level()` when the CPU lacks it, so that tests can
/// compare every width the machine has. Returns the level used.
int alexnet_inverse_three_quarters_f32_at(const float *s, float *out, long count, int level);

/// As `alexnet_inverse_three_quarters_f32_at`, in double precision.
int alexnet_inverse_three_quarters_f64_at(const double *s, double *out, long count, int level);

#ifdef __cplusplus
}
#endif

#endif
