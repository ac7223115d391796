/* Image files: PNG through libpng, JPEG through libjpeg(-turbo), each built
 * in when CMake found it (NB_HAVE_PNG, NB_HAVE_JPEG).  Every image comes out
 * as 8-bit grey or RGB, rows of pixels (HWC):
 *   - PNG: palettes expanded to RGB, grey below 8 bits widened, 16-bit
 *     samples scaled to 8 bits (rounded), alpha and tRNS transparency dropped;
 *   - JPEG: grey stays grey, colour (YCbCr) is decoded to RGB; CMYK is refused.
 * Both libraries report errors by longjmp from their error handlers; the
 * message is kept and becomes an NB_ERR_FORMAT naming the file.  Sizes are
 * bounded before any pixel buffer is allocated. */
#include "io.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NB_HAVE_PNG
#include <png.h>
#endif
#ifdef NB_HAVE_JPEG
#include <jerror.h>
#include <jpeglib.h>
#endif

#define MAX_SIDE 65535
#define MAX_PIXELS ((size_t)1 << 26) /* 64 Mpixels: 192 MB as RGB */
#define MAX_FILE_BYTES ((size_t)1 << 28)

int nb_image_formats(void) {
    int f = 0;
#ifdef NB_HAVE_PNG
    f |= NB_IMAGE_PNG;
#endif
#ifdef NB_HAVE_JPEG
    f |= NB_IMAGE_JPEG;
#endif
    return f;
}

void nb_image_free(nb_image *im) {
    if (!im) return;
    free(im->pix);
    memset(im, 0, sizeof *im);
}

#if defined(NB_HAVE_PNG) || defined(NB_HAVE_JPEG)
static nb_status image_alloc(nb_image *im, int h, int w, int c, const char *name) {
    memset(im, 0, sizeof *im);
    if (h < 1 || w < 1 || h > MAX_SIDE || w > MAX_SIDE || (size_t)h * (size_t)w > MAX_PIXELS)
        return nb_err(NB_ERR_FORMAT, "%s: image of %d x %d pixels (at most %d on a side and "
                      "%zu in all)", name, w, h, MAX_SIDE, MAX_PIXELS);
    im->pix = malloc((size_t)h * (size_t)w * (size_t)c);
    if (!im->pix) return nb_err(NB_ERR_NOMEM, "%s: out of memory for %d x %d pixels", name, w, h);
    im->h = h;
    im->w = w;
    im->c = c;
    return NB_OK;
}
#endif

/* ------------------------------------------------------------------- PNG */

#ifdef NB_HAVE_PNG
typedef struct png_src {
    const unsigned char *data;
    size_t len, pos;
    char msg[200];
} png_src;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_src *src = png_get_error_ptr(png);
    snprintf(src->msg, sizeof src->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    png_src *src = png_get_io_ptr(png);
    if (n > src->len - src->pos) png_error(png, "file truncated");
    memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

/* Transformations to 8-bit grey or RGB; returns the channels. */
static int png_to_8bit(png_structp png, png_infop info) {
    int type = png_get_color_type(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_bit_depth(png, info) == 16) png_set_scale_16(png);
    if (type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return (type & PNG_COLOR_MASK_COLOR) ? 3 : 1;
}

/* Everything png_decode owns, kept outside the frame that calls setjmp so
 * nothing it changes there is lost by the longjmp. */
typedef struct png_job {
    png_src src;
    png_structp png;
    png_infop info;
    png_bytep *rows;
    nb_image im;
    const char *name;
} png_job;

static nb_status png_run(png_job *j) {
    if (setjmp(png_jmpbuf(j->png)))
        return nb_err(NB_ERR_FORMAT, "%s: corrupt PNG: %s", j->name, j->src.msg);
    png_set_user_limits(j->png, MAX_SIDE, MAX_SIDE);
    png_set_read_fn(j->png, &j->src, png_read_mem);
    png_read_info(j->png, j->info);
    int c = png_to_8bit(j->png, j->info);
    int w = (int)png_get_image_width(j->png, j->info), h = (int)png_get_image_height(j->png, j->info);
    if (png_get_rowbytes(j->png, j->info) != (size_t)w * (size_t)c)
        return nb_err(NB_ERR_FORMAT, "%s: unexpected PNG row layout", j->name);
    nb_status s = image_alloc(&j->im, h, w, c, j->name);
    if (s != NB_OK) return s;
    if (!(j->rows = malloc(sizeof *j->rows * (size_t)h)))
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", j->name);
    for (int y = 0; y < h; y++) j->rows[y] = j->im.pix + (size_t)y * (size_t)w * (size_t)c;
    png_read_image(j->png, j->rows);
    png_read_end(j->png, NULL);
    return NB_OK;
}

static nb_status png_decode(const void *data, size_t len, const char *name, nb_image *out) {
    png_job j = {.src = {.data = data, .len = len}, .name = name};
    j.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j.src, png_on_error, png_on_warning);
    j.info = j.png ? png_create_info_struct(j.png) : NULL;
    nb_status s = j.info ? png_run(&j) : nb_err(NB_ERR_NOMEM, "%s: out of memory", name);
    free(j.rows);
    png_destroy_read_struct(&j.png, j.info ? &j.info : NULL, NULL);
    if (s != NB_OK) nb_image_free(&j.im);
    else *out = j.im;
    return s;
}
#endif

/* ------------------------------------------------------------------ JPEG */

#ifdef NB_HAVE_JPEG
typedef struct jpeg_failure {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    f->mgr.format_message(cinfo, f->msg);
    longjmp(f->jump, 1);
}

/* Warnings are ignored, except a file that ends early: libjpeg would fill
 * the rest with grey, which must not pass for an image. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_on_error(cinfo);
}

typedef struct jpeg_job {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail;
    nb_image im;
    const char *name;
} jpeg_job;

/* Errors arrive by longjmp; j->cinfo starts zeroed, so destroying it is safe
 * wherever the jump came from. */
static nb_status jpeg_run(jpeg_job *j, const void *data, size_t len) {
    struct jpeg_decompress_struct *ci = &j->cinfo;
    if (setjmp(j->fail.jump))
        return nb_err(NB_ERR_FORMAT, "%s: corrupt JPEG: %s", j->name, j->fail.msg);
    jpeg_create_decompress(ci);
    jpeg_mem_src(ci, data, (unsigned long)len);
    jpeg_read_header(ci, TRUE);
    if (ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK)
        return nb_err(NB_ERR_FORMAT, "%s: CMYK JPEG images are not supported (convert to RGB)",
                      j->name);
    int c = ci->num_components == 1 ? 1 : 3;
    ci->out_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    nb_status s = image_alloc(&j->im, (int)ci->image_height, (int)ci->image_width, c, j->name);
    if (s != NB_OK) return s;
    jpeg_start_decompress(ci);
    if ((int)ci->output_components != c)
        return nb_err(NB_ERR_FORMAT, "%s: unexpected JPEG components", j->name);
    while (ci->output_scanline < ci->output_height) {
        JSAMPROW row = j->im.pix + (size_t)ci->output_scanline * (size_t)j->im.w * (size_t)c;
        jpeg_read_scanlines(ci, &row, 1);
    }
    jpeg_finish_decompress(ci);
    return NB_OK;
}

static nb_status jpeg_decode(const void *data, size_t len, const char *name, nb_image *out) {
    jpeg_job *j = calloc(1, sizeof *j);
    if (!j) return nb_err(NB_ERR_NOMEM, "%s: out of memory", name);
    j->name = name;
    j->cinfo.err = jpeg_std_error(&j->fail.mgr);
    j->fail.mgr.error_exit = jpeg_on_error;
    j->fail.mgr.emit_message = jpeg_on_message;
    nb_status s = jpeg_run(j, data, len);
    jpeg_destroy_decompress(&j->cinfo);
    if (s != NB_OK) nb_image_free(&j->im);
    else *out = j->im;
    free(j);
    return s;
}
#endif

/* ---------------------------------------------------------------- decode */

nb_status nb_image_parse(const void *data, size_t len, const char *name, nb_image *out) {
    if (!out) return nb_err(NB_ERR_ARG, "nb_image_parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (!name) name = "image";
    if (!data && len) return nb_err(NB_ERR_ARG, "%s: no data", name);
    const unsigned char *b = data;
    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && memcmp(b, png_magic, 8) == 0) {
#ifdef NB_HAVE_PNG
        return png_decode(data, len, name, out);
#else
        return nb_err(NB_ERR_ARG, "%s: nabla was built without libpng (install libpng-dev and "
                      "rebuild to read PNG files)", name);
#endif
    }
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) {
#ifdef NB_HAVE_JPEG
        return jpeg_decode(data, len, name, out);
#else
        return nb_err(NB_ERR_ARG, "%s: nabla was built without libjpeg (install "
                      "libjpeg62-turbo-dev and rebuild to read JPEG files)", name);
#endif
    }
    return nb_err(NB_ERR_FORMAT, "%s: not a PNG or JPEG file%s", name,
                  len == 0 ? " (empty)" : "");
}

/* The whole file, at most MAX_FILE_BYTES. */
static nb_status read_raw(const char *path, unsigned char **buf, size_t *len) {
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return nb_err(NB_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 0, n = 0;
    nb_status s = NB_OK;
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_FILE_BYTES) {
                s = nb_err(NB_ERR_FORMAT, "%s: larger than %zu bytes", path, MAX_FILE_BYTES);
                break;
            }
            cap = cap ? 2 * cap : 64 * 1024;
            unsigned char *bigger = realloc(*buf, cap);
            if (!bigger) {
                s = nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            *buf = bigger;
        }
        size_t r = fread(*buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) s = nb_err(NB_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (s != NB_OK) {
        free(*buf);
        *buf = NULL;
    }
    *len = n;
    return s;
}

nb_status nb_image_load(const char *path, nb_image *out) {
    if (!path || !out) return nb_err(NB_ERR_ARG, "nb_image_load: NULL argument");
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t len = 0;
    nb_status s = read_raw(path, &buf, &len);
    if (s != NB_OK) return s;
    s = nb_image_parse(buf, len, path, out);
    free(buf);
    return s;
}
