// Square roots a vector at a time, for LRN's s^-0.75.
//
// Swift lowers `SIMD8<Float>.squareRoot()` lane by lane, each lane a scalar
// `sqrtss` behind a branch to `sqrtf` for errno (perf: most of LRN's time).
// These loops use the CPU's vector square root (SSE2 on x86-64, NEON on
// arm64), which is correctly rounded like the scalar one, so every result is
// bitwise the scalar expression's.
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

#ifdef __cplusplus
}
#endif

#endif
