#include "cjpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

// libjpeg's error manager extended with a jump target and a warning count.
typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    int warnings;
    char message[CJPEG_MESSAGE_LENGTH];
} error_manager;

static void on_error(j_common_ptr info) {
    error_manager *errors = (error_manager *)info->err;
    char text[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, text);
    snprintf(errors->message, sizeof errors->message, "%s", text);
    longjmp(errors->jump, 1);
}

static void on_message(j_common_ptr info, int level) {
    // level -1 is a warning about corrupt data; higher levels are trace messages.
    if (level >= 0) return;
    error_manager *errors = (error_manager *)info->err;
    char text[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, text);
    snprintf(errors->message, sizeof errors->message, "%s", text);
    errors->warnings += 1;
}

static void install(error_manager *errors, j_common_ptr info) {
    memset(errors, 0, sizeof *errors);
    info->err = jpeg_std_error(&errors->base);
    errors->base.error_exit = on_error;
    errors->base.emit_message = on_message;
}

int cjpeg_decode(const unsigned char *data, size_t size, int want_rgb, size_t max_pixels, cjpeg_image *image) {
    struct jpeg_decompress_struct info;
    error_manager errors;
    unsigned char *volatile pixels = NULL;
    memset(image, 0, sizeof *image);
    install(&errors, (j_common_ptr)&info);
    if (setjmp(errors.jump)) {
        snprintf(image->message, sizeof image->message, "%s", errors.message);
        jpeg_destroy_decompress(&info);
        free(pixels);
        return 1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    // Refuse before libjpeg allocates anything in proportion to the claimed size.
    if ((size_t)info.image_width * (size_t)info.image_height > max_pixels) {
        snprintf(errors.message, sizeof errors.message, "the header claims %ux%u pixels, above the limit of %zu pixels",
                 (unsigned)info.image_width, (unsigned)info.image_height, max_pixels);
        longjmp(errors.jump, 1);
    }
    image->source_channels = info.num_components;
    image->progressive = info.progressive_mode ? 1 : 0;
    int cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
    if (cmyk) {
        info.out_color_space = JCS_CMYK;
    } else if (want_rgb || info.num_components != 1) {
        info.out_color_space = JCS_RGB;
    }
    jpeg_start_decompress(&info);
    const int width = (int)info.output_width, height = (int)info.output_height;
    const int decoded = info.output_components;
    const int channels = (cmyk || want_rgb) ? 3 : decoded;
    size_t row_bytes = (size_t)width * (size_t)decoded;
    pixels = malloc((size_t)width * (size_t)height * (size_t)(decoded > channels ? decoded : channels));
    if (!pixels) {
        snprintf(errors.message, sizeof errors.message, "out of memory for %dx%d image", width, height);
        longjmp(errors.jump, 1);
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = pixels + (size_t)info.output_scanline * row_bytes;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    size_t count = (size_t)width * (size_t)height;
    if (cmyk) {
        // Adobe writes CMYK inverted (as libjpeg returns it): R = C * K / 255.
        for (size_t i = 0; i < count; i++) {
            unsigned c = pixels[4 * i], m = pixels[4 * i + 1], y = pixels[4 * i + 2], k = pixels[4 * i + 3];
            pixels[3 * i] = (unsigned char)((c * k + 127) / 255);
            pixels[3 * i + 1] = (unsigned char)((m * k + 127) / 255);
            pixels[3 * i + 2] = (unsigned char)((y * k + 127) / 255);
        }
    } else if (decoded == 1 && channels == 3) {
        for (size_t i = count; i-- > 0;) {
            unsigned char v = pixels[i];
            pixels[3 * i] = v;
            pixels[3 * i + 1] = v;
            pixels[3 * i + 2] = v;
        }
    }
    image->pixels = pixels;
    image->width = width;
    image->height = height;
    image->channels = channels;
    image->warnings = errors.warnings;
    snprintf(image->message, sizeof image->message, "%s", errors.message);
    return 0;
}

int cjpeg_encode(const unsigned char *pixels, int width, int height, int channels,
                 int quality, int progressive, unsigned char **out, unsigned long *out_size,
                 char message[CJPEG_MESSAGE_LENGTH]) {
    struct jpeg_compress_struct info;
    error_manager errors;
    // Written by libjpeg through its address, so it stays valid after a longjmp.
    unsigned char *target = NULL;
    unsigned long size = 0;
    *out = NULL;
    *out_size = 0;
    if (channels != 1 && channels != 3 && channels != 4) {
        snprintf(message, CJPEG_MESSAGE_LENGTH, "cannot encode %d channels (1 grey, 3 RGB or 4 CMYK)", channels);
        return 1;
    }
    install(&errors, (j_common_ptr)&info);
    if (setjmp(errors.jump)) {
        snprintf(message, CJPEG_MESSAGE_LENGTH, "%s", errors.message);
        jpeg_destroy_compress(&info);
        free(target);
        return 1;
    }
    jpeg_create_compress(&info);
    jpeg_mem_dest(&info, &target, &size);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.input_components = channels;
    info.in_color_space = channels == 1 ? JCS_GRAYSCALE : channels == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&info);
    // CMYK is written as Adobe does (inverted, no transform), so a decoder reads C * K / 255 back as red.
    if (channels == 4) jpeg_set_colorspace(&info, JCS_CMYK);
    jpeg_set_quality(&info, quality, TRUE);
    if (progressive) jpeg_simple_progression(&info);
    jpeg_start_compress(&info, TRUE);
    size_t row_bytes = (size_t)width * (size_t)channels;
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)info.next_scanline * row_bytes);
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    *out = target;
    *out_size = size;
    message[0] = 0;
    return 0;
}

void cjpeg_free(void *buffer) { free(buffer); }
