// See include/blascore.h for why this exists.
#include "blascore.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define ALEXNET_X86 1
#endif

// OpenBLAS's public functions.
extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);
extern void openblas_set_num_threads(int threads);
// OpenBLAS's core selection, exported by DYNAMIC_ARCH builds only (weak, so a
// build for one fixed core still links and simply cannot switch).
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

#ifdef ALEXNET_X86
static unsigned long long read_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

int alexnet_cpu_vector_level(void) {
#ifdef ALEXNET_X86
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    int level = (ecx & 1u) ? 1 : 0;  // SSE3
    if (level == 0) return 0;
    const int osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1, fma = (ecx >> 12) & 1;
    if (!osxsave || !avx) return level;
    const unsigned long long xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return level;  // the OS does not save the ymm state
    level = 2;
    unsigned int maxLeaf = __get_cpuid_max(0, 0);
    if (maxLeaf < 7) return level;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const int avx2 = (ebx >> 5) & 1;
    if (!(avx2 && fma)) return level;
    level = 3;
    const unsigned int avx512 = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31);  // F DQ CD BW VL
    if ((ebx & avx512) == avx512 && (xcr0 & 0xe0) == 0xe0) level = 4;
    return level;
#else
    return 0;
#endif
}

int alexnet_cpu_has_avx512_bf16(void) {
#ifdef ALEXNET_X86
    unsigned int eax, ebx, ecx, edx;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    return (eax >> 5) & 1;
#else
    return 0;
#endif
}

void alexnet_cpu_brand(char *buffer, int capacity) {
    if (capacity <= 0) return;
    buffer[0] = 0;
#ifdef ALEXNET_X86
    unsigned int regs[12];
    if (__get_cpuid_max(0x80000000, 0) < 0x80000004) return;
    for (unsigned int i = 0; i < 3; i++) {
        __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    }
    char text[49];
    memcpy(text, regs, 48);
    text[48] = 0;
    const char *start = text;
    while (*start == ' ') start++;
    strncpy(buffer, start, (size_t)capacity - 1);
    buffer[capacity - 1] = 0;
    size_t length = strlen(buffer);
    while (length > 0 && buffer[length - 1] == ' ') buffer[--length] = 0;
#endif
}

void alexnet_cpu_signature(int *family, int *model, char *vendor, int vendorCapacity) {
    *family = -1;
    *model = -1;
    if (vendorCapacity > 0) vendor[0] = 0;
#ifdef ALEXNET_X86
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return;
    char name[13];
    memcpy(name, &ebx, 4);
    memcpy(name + 4, &edx, 4);
    memcpy(name + 8, &ecx, 4);
    name[12] = 0;
    if (vendorCapacity > 0) {
        strncpy(vendor, name, (size_t)vendorCapacity - 1);
        vendor[vendorCapacity - 1] = 0;
    }
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return;
    int baseFamily = (eax >> 8) & 0xf, baseModel = (eax >> 4) & 0xf;
    int extFamily = (eax >> 20) & 0xff, extModel = (eax >> 16) & 0xf;
    *family = baseFamily == 0xf ? baseFamily + extFamily : baseFamily;
    *model = (baseFamily == 0x6 || baseFamily == 0xf) ? (extModel << 4) + baseModel : baseModel;
#endif
}

const char *alexnet_blas_corename(void) { return openblas_get_corename(); }

const char *alexnet_blas_config(void) { return openblas_get_config(); }

int alexnet_blas_can_switch_core(void) {
    return gotoblas_dynamic_init != NULL && gotoblas_dynamic_quit != NULL;
}

int alexnet_blas_switch_core(const char *name) {
    if (!alexnet_blas_can_switch_core()) return -1;
    const char *previous = getenv("OPENBLAS_CORETYPE");
    char *saved = previous ? strdup(previous) : NULL;
    setenv("OPENBLAS_CORETYPE", name, 1);
    // gotoblas_dynamic_quit forgets the core; gotoblas_dynamic_init reads the
    // variable, points OpenBLAS's kernel table at the named core and sets that
    // core's blocking parameters. Buffers are allocated at the first call, with
    // a size fixed at build time, so nothing else depends on the earlier core.
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    if (saved) {
        setenv("OPENBLAS_CORETYPE", saved, 1);
        free(saved);
    } else {
        unsetenv("OPENBLAS_CORETYPE");
    }
    return 0;
}

void alexnet_blas_set_threads(int threads) { openblas_set_num_threads(threads); }
