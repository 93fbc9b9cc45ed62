// OpenBLAS's CBLAS interface and openblas_set_num_threads.
#include <cblas.h>
