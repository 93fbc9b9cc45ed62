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
// finishes the rest with the next narrower loop and the scalar tail. One macro
// writes every width's loop, so they cannot drift apart: `root = sqrt(s)`, then
// `1 / (root * sqrt(root))`.
#define ALEXNET_INVERSE_LOOP(name, attribute, type, vector, lanes, set1, load, store, sqrt, mul, div) \
    attribute static long name(const type *s, type *out, long count) {                            \
        const vector one = set1(1);                                                                \
        long i = 0;                                                                                \
        for (; i + (lanes) <= count; i += (lanes)) {                                               \
            vector root = sqrt(load(s + i));                                                       \
            store(out + i, div(one, mul(root, sqrt(root))));                                       \
        }                                                                                          \
        return i;                                                                                  \
    }

#ifdef ALEXNET_X86_64
// An x86 width's loop from its intrinsics' prefix (`_mm512`, `_mm256`, `_mm`)
// and suffix (`ps`, `pd`).
#define ALEXNET_INVERSE_X86(name, attribute, type, vector, lanes, pre, sfx)                         \
    ALEXNET_INVERSE_LOOP(name, attribute, type, vector, lanes, pre##_set1_##sfx, pre##_loadu_##sfx,  \
                         pre##_storeu_##sfx, pre##_sqrt_##sfx, pre##_mul_##sfx, pre##_div_##sfx)
// The three widths of one precision; `lanes` is the SSE2 vector's.
#define ALEXNET_INVERSE_X86_WIDTHS(p, type, sfx, vector512, vector256, vector128, lanes)                         \
    ALEXNET_INVERSE_X86(p##_avx512, __attribute__((target("avx512f"))), type, vector512, 4 * (lanes), _mm512, sfx) \
    ALEXNET_INVERSE_X86(p##_avx, __attribute__((target("avx"))), type, vector256, 2 * (lanes), _mm256, sfx)        \
    ALEXNET_INVERSE_X86(p##_sse2, , type, vector128, lanes, _mm, sfx)
ALEXNET_INVERSE_X86_WIDTHS(f32, float, ps, __m512, __m256, __m128, 4)
ALEXNET_INVERSE_X86_WIDTHS(f64, double, pd, __m512d, __m256d, __m128d, 2)
#elif defined(__aarch64__)
ALEXNET_INVERSE_LOOP(f32_neon, , float, float32x4_t, 4, vdupq_n_f32, vld1q_f32, vst1q_f32, vsqrtq_f32, vmulq_f32, vdivq_f32)
ALEXNET_INVERSE_LOOP(f64_neon, , double, float64x2_t, 2, vdupq_n_f64, vld1q_f64, vst1q_f64, vsqrtq_f64, vmulq_f64, vdivq_f64)
#endif

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

// The widest loop the level and the CPU allow, then the narrower ones on what
// is left, then the scalar tail.
#if defined(ALEXNET_X86_64)
#define ALEXNET_INVERSE_WIDTHS(p, s, out, count, level, done)                       \
    if (level >= 4) done = p##_avx512(s, out, count);                               \
    if (level >= 2) done += p##_avx(s + done, out + done, count - done);            \
    done += p##_sse2(s + done, out + done, count - done);
#elif defined(__aarch64__)
#define ALEXNET_INVERSE_WIDTHS(p, s, out, count, level, done) done = p##_neon(s, out, count);
#else
#define ALEXNET_INVERSE_WIDTHS(p, s, out, count, level, done) (void)level;
#endif

#define ALEXNET_INVERSE_AT(p, type)                                                                     \
    int alexnet_inverse_three_quarters_##p##_at(const type *s, type *out, long count, int level) {      \
        const int available = alexnet_vectormath_level();                                               \
        if (level > available) level = available;                                                       \
        level = level >= 4 ? 4 : (level >= 2 ? 2 : 0);                                                  \
        long done = 0;                                                                                  \
        ALEXNET_INVERSE_WIDTHS(p, s, out, count, level, done)                                           \
        for (long i = done; i < count; i++) out[i] = inverse_three_quarters_##p(s[i]);                  \
        return level;                                                                                   \
    }

ALEXNET_INVERSE_AT(f32, float)
ALEXNET_INVERSE_AT(f64, double)

void alexnet_inverse_three_quarters_f32(const float *s, float *out, long count) {
    alexnet_inverse_three_quarters_f32_at(s, out, count, 4);
}

void alexnet_inverse_three_quarters_f64(const double *s, double *out, long count) {
    alexnet_inverse_three_quarters_f64_at(s, out, count, 4);
}
