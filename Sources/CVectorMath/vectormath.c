#include "vectormath.h"
#include "blascore.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define ALEXNET_X86_64 1
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

// Each width's loop returns how many leading elements it did; the caller
// finishes the rest with the next narrower loop and the scalar tail.
#ifdef ALEXNET_X86_64
__attribute__((target("avx512f")))
static long f32_avx512(const float *s, float *out, long count) {
    const __m512 one = _mm512_set1_ps(1.0f);
    long i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 root = _mm512_sqrt_ps(_mm512_loadu_ps(s + i));
        _mm512_storeu_ps(out + i, _mm512_div_ps(one, _mm512_mul_ps(root, _mm512_sqrt_ps(root))));
    }
    return i;
}

__attribute__((target("avx")))
static long f32_avx(const float *s, float *out, long count) {
    const __m256 one = _mm256_set1_ps(1.0f);
    long i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 root = _mm256_sqrt_ps(_mm256_loadu_ps(s + i));
        _mm256_storeu_ps(out + i, _mm256_div_ps(one, _mm256_mul_ps(root, _mm256_sqrt_ps(root))));
    }
    return i;
}

__attribute__((target("avx512f")))
static long f64_avx512(const double *s, double *out, long count) {
    const __m512d one = _mm512_set1_pd(1.0);
    long i = 0;
    for (; i + 8 <= count; i += 8) {
        __m512d root = _mm512_sqrt_pd(_mm512_loadu_pd(s + i));
        _mm512_storeu_pd(out + i, _mm512_div_pd(one, _mm512_mul_pd(root, _mm512_sqrt_pd(root))));
    }
    return i;
}

__attribute__((target("avx")))
static long f64_avx(const double *s, double *out, long count) {
    const __m256d one = _mm256_set1_pd(1.0);
    long i = 0;
    for (; i + 4 <= count; i += 4) {
        __m256d root = _mm256_sqrt_pd(_mm256_loadu_pd(s + i));
        _mm256_storeu_pd(out + i, _mm256_div_pd(one, _mm256_mul_pd(root, _mm256_sqrt_pd(root))));
    }
    return i;
}
#endif

// The baseline width: SSE2 on x86-64, NEON on arm64, none elsewhere.
static long f32_base(const float *s, float *out, long count) {
    long i = 0;
#if defined(ALEXNET_X86_64)
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
    return i;
}

static long f64_base(const double *s, double *out, long count) {
    long i = 0;
#if defined(ALEXNET_X86_64)
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
    return i;
}

int alexnet_vectormath_level(void) {
    // CPUID traps to the hypervisor on a virtual machine (microseconds), so it
    // is read once; a race between two first calls stores the same value.
    static int cached = -1;
    int level = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (level < 0) {
#ifdef ALEXNET_X86_64
        int cpu = alexnet_cpu_vector_level();
        level = cpu >= 4 ? 4 : (cpu >= 2 ? 2 : 0);
#else
        level = 0;
#endif
        __atomic_store_n(&cached, level, __ATOMIC_RELAXED);
    }
    return level;
}

int alexnet_inverse_three_quarters_f32_at(const float *s, float *out, long count, int level) {
    const int available = alexnet_vectormath_level();
    if (level > available) level = available;
    level = level >= 4 ? 4 : (level >= 2 ? 2 : 0);
    long done = 0;
#ifdef ALEXNET_X86_64
    if (level >= 4) done = f32_avx512(s, out, count);
    if (level >= 2) done += f32_avx(s + done, out + done, count - done);
#endif
    done += f32_base(s + done, out + done, count - done);
    for (long i = done; i < count; i++) out[i] = inverse_three_quarters_f32(s[i]);
    return level;
}

int alexnet_inverse_three_quarters_f64_at(const double *s, double *out, long count, int level) {
    const int available = alexnet_vectormath_level();
    if (level > available) level = available;
    level = level >= 4 ? 4 : (level >= 2 ? 2 : 0);
    long done = 0;
#ifdef ALEXNET_X86_64
    if (level >= 4) done = f64_avx512(s, out, count);
    if (level >= 2) done += f64_avx(s + done, out + done, count - done);
#endif
    done += f64_base(s + done, out + done, count - done);
    for (long i = done; i < count; i++) out[i] = inverse_three_quarters_f64(s[i]);
    return level;
}

void alexnet_inverse_three_quarters_f32(const float *s, float *out, long count) {
    alexnet_inverse_three_quarters_f32_at(s, out, count, 4);
}

void alexnet_inverse_three_quarters_f64(const double *s, double *out, long count) {
    alexnet_inverse_three_quarters_f64_at(s, out, count, 4);
}
