// zlib for the .npz reader and writer (raw deflate and crc32).
// inflateInit2 and deflateInit2 are function-like macros, which Swift cannot
// call; these inline wrappers expand them with raw deflate (windowBits -15:
// no zlib header or trailer, as ZIP members store it).
#include <zlib.h>

static inline int czlib_inflate_init_raw(z_stream *stream) {
    return inflateInit2(stream, -15);
}

static inline int czlib_deflate_init_raw(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
}
