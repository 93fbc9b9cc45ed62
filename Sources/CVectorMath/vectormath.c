#include "vectormath.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

// Scalar tail and fallback: IEEE square root, product and quotient, each
// correctly rounded, as the vector instructions are.
static inline float inverse_three_quarters_f32(float s) {
    float root = __builtin_sqrtf(s);
    return 1.0f / (root * __builtin_sqrtf(root));
}

static inline double inverse_three_quarters_f64(double s) {
    double root = __builtin_sqrt(s);
    return 1.0 / (root * __builtin_sqrt(root));
}

void alexnet_inverse_three_quarters_f32(const float *s, float *out, long count) {
    long i = 0;
#if defined(__SSE2__)
    const __m128 one = _mm_set1_ps(1.0f);
    for (; i + 4 <= count; i += 4) {
        __m128 root = _mm_sqrt_ps(_mm_loadu_ps(s + i));
        _mm_storeu_ps(out + i, _mm_div_ps(one, _mm_mul_ps(root, _mm_sqrt_ps(root))));
    }
#elif defined(__aarch64__)
    const float32x4_t one = vdupq_n_f32(1.0f);
    for (; i + 4 <= count; i += 4) {
        float32x4_t root = vsqrtq_f32(vld1q_f32(s + i));
        vst1q_f32(out + i, vdivq_f32(one, vmulq_f32(root, vsqrtq_f32(root))));
    }
#endif
    for (; i < count; i++) out[i] = inverse_three_quarters_f32(s[i]);
}

void alexnet_inverse_three_quarters_f64(const double *s, double *out, long count) {
    long i = 0;
#if defined(__SSE2__)
    const __m128d one = _mm_set1_pd(1.0);
    for (; i + 2 <= count; i += 2) {
        __m128d root = _mm_sqrt_pd(_mm_loadu_pd(s + i));
        _mm_storeu_pd(out + i, _mm_div_pd(one, _mm_mul_pd(root, _mm_sqrt_pd(root))));
    }
#elif defined(__aarch64__)
    const float64x2_t one = vdupq_n_f64(1.0);
    for (; i + 2 <= count; i += 2) {
        float64x2_t root = vsqrtq_f64(vld1q_f64(s + i));
        vst1q_f64(out + i, vdivq_f64(one, vmulq_f64(root, vsqrtq_f64(root))));
    }
#endif
    for (; i < count; i++) out[i] = inverse_three_quarters_f64(s[i]);
}
