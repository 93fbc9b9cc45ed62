#ifndef ALEXNET_CJPEG_H
#define ALEXNET_CJPEG_H
// A small C layer over libjpeg. libjpeg reports errors by longjmp, which Swift
// cannot catch, so the setjmp/longjmp handling lives here and every function
// returns a status code plus a message instead.
#include <stddef.h>

#define CJPEG_MESSAGE_LENGTH 200

/// A decoded image: 8-bit interleaved pixels, row-major, `channels` per pixel.
typedef struct {
    unsigned char *pixels;   // malloc'd; release with cjpeg_free
    int width;
    int height;
    int channels;            // 3 (RGB) after decoding with want_rgb, else 1 or 3
    int source_channels;     // components stored in the file (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK)
    int progressive;         // 1 if the file is progressive
    int warnings;            // libjpeg warnings (e.g. "Premature end of JPEG file")
    char message[CJPEG_MESSAGE_LENGTH];  // error or last warning text
} cjpeg_image;

/// Decodes a JPEG held in memory. With want_rgb, greyscale and CMYK files are
/// converted to RGB. A header claiming more than max_pixels pixels is refused
/// before anything is allocated for it. Returns 0 on success; otherwise non-zero
/// with `message` set and no pixels to free.
int cjpeg_decode(const unsigned char *data, size_t size, int want_rgb, size_t max_pixels, cjpeg_image *image);

/// Encodes 8-bit pixels (1 = grey, 3 = RGB or 4 = CMYK channels) as a baseline or
/// progressive JPEG. On success returns 0 and a malloc'd buffer in *out
/// (release with cjpeg_free); otherwise non-zero with `message` filled.
int cjpeg_encode(const unsigned char *pixels, int width, int height, int channels,
                 int quality, int progressive, unsigned char **out, unsigned long *out_size,
                 char message[CJPEG_MESSAGE_LENGTH]);

/// Frees a buffer returned by cjpeg_decode or cjpeg_encode.
void cjpeg_free(void *buffer);

#endif
