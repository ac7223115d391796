/* Image files and image folders: the test writes its own PNG and JPEG files
 * with libpng and libjpeg (grey, RGB, RGBA, palette, 16-bit, interlaced;
 * several sizes; corrupt and hostile files) and checks decoding, channel
 * conversion, resizing and the folder scan against values computed here. */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#include "nabla.h"
#include "test.h"

#include <ftw.h>
#include <jpeglib.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char tmp[64];

/* A pattern with some of everything: gradients, and channels that differ. */
static uint8_t pattern(int y, int x, int ch, int seed) {
    return (uint8_t)((x * 37 + y * 11 + ch * 71 + seed * 13 + (x * y) % 7 * 5) & 255);
}

/* Smooth enough for JPEG to keep it close (colour is subsampled). */
static uint8_t *make_smooth(int h, int w, int c, int seed) {
    uint8_t *p = malloc((size_t)h * (size_t)w * (size_t)c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++)
                p[((size_t)y * (size_t)w + (size_t)x) * (size_t)c + (size_t)ch] =
                    (uint8_t)(20 + (3 * x + 2 * y + 60 * ch + seed) % 200);
    return p;
}

static uint8_t *make_pixels(int h, int w, int c, int seed) {
    uint8_t *p = malloc((size_t)h * (size_t)w * (size_t)c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) p[((size_t)y * (size_t)w + (size_t)x) * (size_t)c + (size_t)ch] = pattern(y, x, ch, seed);
    return p;
}

/* PNG of the given colour type and depth; rows are bytes of that layout. */
static void write_png_ex(const char *path, const uint8_t *rows, int h, int w, int type, int depth,
                         int interlace, const png_color *palette, int n_palette) {
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, n_palette);
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    png_bytep *rp = malloc(sizeof *rp * (size_t)h);
    for (int y = 0; y < h; y++) rp[y] = (png_bytep)rows + (size_t)y * rowbytes;
    png_write_image(png, rp);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rp);
    fclose(f);
}

static void write_png(const char *path, const uint8_t *pix, int h, int w, int c) {
    int type = c == 1 ? PNG_COLOR_TYPE_GRAY : c == 2 ? PNG_COLOR_TYPE_GRAY_ALPHA
               : c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGB_ALPHA;
    write_png_ex(path, pix, h, w, type, 8, 0, NULL, 0);
}

static void write_jpeg(const char *path, const uint8_t *pix, int h, int w, int c) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr err;
    ci.err = jpeg_std_error(&err);
    jpeg_create_compress(&ci);
    FILE *f = fopen(path, "wb");
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = c;
    ci.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 95, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)pix + (size_t)ci.next_scanline * (size_t)w * (size_t)c;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
}

/* The same file decoded by libjpeg's own API, to compare with exactly. */
static uint8_t *jpeg_reference(const char *path, int *h, int *w, int *c) {
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr err;
    ci.err = jpeg_std_error(&err);
    jpeg_create_decompress(&ci);
    FILE *f = fopen(path, "rb");
    jpeg_stdio_src(&ci, f);
    jpeg_read_header(&ci, TRUE);
    jpeg_start_decompress(&ci);
    *h = (int)ci.output_height, *w = (int)ci.output_width, *c = ci.output_components;
    uint8_t *p = malloc((size_t)*h * (size_t)*w * (size_t)*c);
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = p + (size_t)ci.output_scanline * (size_t)*w * (size_t)*c;
        jpeg_read_scanlines(&ci, &row, 1);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    fclose(f);
    return p;
}

static void path_of(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmp, name); }

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len);
    if (fread(b, 1, *len, f) != *len) *len = 0;
    fclose(f);
    return b;
}

/* ------------------------------------------------------------- decoding */

static void check_png(const char *name, const uint8_t *pix, int h, int w, int c) {
    char path[256];
    path_of(path, sizeof path, name);
    write_png(path, pix, h, w, c);
    nb_image im;
    CHECK_OK(nb_image_load(path, &im));
    int want_c = c == 1 || c == 2 ? 1 : 3; /* alpha dropped */
    CHECKF(im.h == h && im.w == w && im.c == want_c, "%s: %dx%dx%d", name, im.h, im.w, im.c);
    int same = im.pix != NULL;
    for (int i = 0; same && i < h * w; i++)
        for (int ch = 0; ch < want_c; ch++)
            same &= im.pix[i * want_c + ch] == pix[i * c + ch];
    CHECKF(same, "%s: pixels differ", name);
    nb_image_free(&im);
}

static void test_png_kinds(void) {
    CHECK(nb_image_formats() == (NB_IMAGE_PNG | NB_IMAGE_JPEG));
    int sizes[][2] = {{1, 1}, {28, 28}, {5, 17}, {33, 2}};
    for (int s = 0; s < 4; s++)
        for (int c = 1; c <= 4; c++) {
            char name[64];
            snprintf(name, sizeof name, "kind_%dx%d_c%d.png", sizes[s][0], sizes[s][1], c);
            uint8_t *p = make_pixels(sizes[s][0], sizes[s][1], c, s + c);
            check_png(name, p, sizes[s][0], sizes[s][1], c);
            free(p);
        }
    char path[256];
    nb_image im;
    /* 16-bit grey: scaled to 8 bits, rounded (v * 255 / 65535) */
    uint8_t be16[2 * 6];
    unsigned v16[6] = {0, 65535, 257, 128, 32896, 40000};
    for (int i = 0; i < 6; i++) be16[2 * i] = (uint8_t)(v16[i] >> 8), be16[2 * i + 1] = (uint8_t)v16[i];
    path_of(path, sizeof path, "grey16.png");
    write_png_ex(path, be16, 2, 3, PNG_COLOR_TYPE_GRAY, 16, 0, NULL, 0);
    CHECK_OK(nb_image_load(path, &im));
    for (int i = 0; im.pix && i < 6; i++)
        CHECKF(im.pix[i] == (uint8_t)floor(v16[i] * 255.0 / 65535 + 0.5), "16-bit %u -> %u", v16[i], im.pix[i]);
    nb_image_free(&im);
    /* 2-bit grey widened: 0, 85, 170, 255 */
    uint8_t two[1] = {0x1b}; /* 00 01 10 11 */
    path_of(path, sizeof path, "grey2.png");
    write_png_ex(path, two, 1, 4, PNG_COLOR_TYPE_GRAY, 2, 0, NULL, 0);
    CHECK_OK(nb_image_load(path, &im));
    CHECK(im.c == 1 && im.w == 4 && im.pix && im.pix[0] == 0 && im.pix[1] == 85 &&
          im.pix[2] == 170 && im.pix[3] == 255);
    nb_image_free(&im);
    /* a palette: expanded to RGB */
    png_color pal[3] = {{255, 0, 0}, {0, 128, 0}, {1, 2, 3}};
    uint8_t idx[6] = {0, 1, 2, 2, 1, 0};
    path_of(path, sizeof path, "palette.png");
    write_png_ex(path, idx, 2, 3, PNG_COLOR_TYPE_PALETTE, 8, 0, pal, 3);
    CHECK_OK(nb_image_load(path, &im));
    int ok = im.c == 3 && im.pix != NULL;
    for (int i = 0; ok && i < 6; i++)
        ok = im.pix[3 * i] == pal[idx[i]].red && im.pix[3 * i + 1] == pal[idx[i]].green &&
             im.pix[3 * i + 2] == pal[idx[i]].blue;
    CHECK(ok);
    nb_image_free(&im);
    /* interlaced (Adam7) */
    uint8_t *p = make_pixels(13, 9, 3, 7);
    path_of(path, sizeof path, "interlaced.png");
    write_png_ex(path, p, 13, 9, PNG_COLOR_TYPE_RGB, 8, 1, NULL, 0);
    CHECK_OK(nb_image_load(path, &im));
    CHECK(im.h == 13 && im.w == 9 && im.c == 3 && im.pix && memcmp(im.pix, p, 13 * 9 * 3) == 0);
    nb_image_free(&im);
    free(p);
}

static void test_jpeg(void) {
    int sizes[][2] = {{28, 28}, {7, 31}, {64, 48}};
    for (int s = 0; s < 3; s++)
        for (int c = 1; c <= 3; c += 2) {
            int h = sizes[s][0], w = sizes[s][1];
            char path[256], name[64];
            snprintf(name, sizeof name, "photo_%dx%d_c%d.jpg", h, w, c);
            path_of(path, sizeof path, name);
            uint8_t *p = make_smooth(h, w, c, s);
            write_jpeg(path, p, h, w, c);
            nb_image im;
            CHECK_OK(nb_image_load(path, &im));
            int rh, rw, rc;
            uint8_t *ref = jpeg_reference(path, &rh, &rw, &rc);
            CHECKF(im.h == h && im.w == w && im.c == c && rh == h && rw == w && rc == c,
                   "%s: %dx%dx%d", name, im.h, im.w, im.c);
            size_t n = (size_t)h * (size_t)w * (size_t)c;
            CHECKF(im.pix && memcmp(im.pix, ref, n) == 0, "%s: differs from libjpeg's decoding", name);
            /* and it is the picture that was written (JPEG is lossy) */
            double err = 0;
            for (size_t i = 0; im.pix && i < n; i++) err += fabs((double)im.pix[i] - p[i]);
            CHECKF(err / (double)n < 8, "%s: mean error %g", name, err / (double)n);
            free(ref);
            free(p);
            nb_image_free(&im);
        }
}

static void test_bad_files(void) {
    char path[256];
    nb_image im;
    uint8_t *p = make_pixels(20, 20, 3, 1);
    /* truncated PNG and JPEG */
    const char *kinds[2] = {"cut.png", "cut.jpg"};
    for (int k = 0; k < 2; k++) {
        path_of(path, sizeof path, kinds[k]);
        if (k == 0) write_png(path, p, 20, 20, 3);
        else write_jpeg(path, p, 20, 20, 3);
        size_t len;
        unsigned char *b = read_bytes(path, &len);
        write_bytes(path, b, len / 2);
        CHECK(nb_image_load(path, &im) == NB_ERR_FORMAT);
        CHECKF(strstr(nb_last_error(), path) && strstr(nb_last_error(), k ? "JPEG" : "PNG"),
               "%s", nb_last_error());
        CHECK(im.pix == NULL);
        /* a flipped byte in the middle: a CRC error, or bad data */
        b[len / 2] ^= 0x55;
        CHECK(nb_image_parse(b, len, kinds[k], &im) != NB_OK || (nb_image_free(&im), k == 1));
        free(b);
    }
    /* not an image at all; empty */
    CHECK(nb_image_parse("hello", 5, "text.png", &im) == NB_ERR_FORMAT);
    CHECKF(strstr(nb_last_error(), "text.png: not a PNG or JPEG file"), "%s", nb_last_error());
    CHECK(nb_image_parse("", 0, "empty.png", &im) == NB_ERR_FORMAT);
    path_of(path, sizeof path, "missing.png");
    CHECK(nb_image_load(path, &im) == NB_ERR_IO);
    CHECKF(strstr(nb_last_error(), "missing.png"), "%s", nb_last_error());
    /* a header claiming 100000 x 100000 pixels: refused before allocating */
    unsigned char hdr[45] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                             'I', 'H', 'D', 'R', 0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0, 8, 2, 0, 0, 0};
    uLong crc = crc32(0, hdr + 12, 17);
    hdr[29] = (unsigned char)(crc >> 24), hdr[30] = (unsigned char)(crc >> 16);
    hdr[31] = (unsigned char)(crc >> 8), hdr[32] = (unsigned char)crc;
    CHECK(nb_image_parse(hdr, sizeof hdr, "huge.png", &im) == NB_ERR_FORMAT);
    CHECKF(strstr(nb_last_error(), "huge.png: corrupt PNG"), "%s", nb_last_error());
    /* 65535 x 65535: within libpng's limits, beyond nabla's */
    hdr[16] = hdr[20] = 0, hdr[17] = hdr[21] = 0, hdr[18] = hdr[22] = 0xff, hdr[19] = hdr[23] = 0xff;
    crc = crc32(0, hdr + 12, 17);
    hdr[29] = (unsigned char)(crc >> 24), hdr[30] = (unsigned char)(crc >> 16);
    hdr[31] = (unsigned char)(crc >> 8), hdr[32] = (unsigned char)crc;
    /* then an empty IDAT, where libpng stops reading the header */
    memcpy(hdr + 33, "\0\0\0\0IDAT", 8);
    crc = crc32(0, hdr + 37, 4);
    hdr[41] = (unsigned char)(crc >> 24), hdr[42] = (unsigned char)(crc >> 16);
    hdr[43] = (unsigned char)(crc >> 8), hdr[44] = (unsigned char)crc;
    CHECK(nb_image_parse(hdr, sizeof hdr, "huge.png", &im) == NB_ERR_FORMAT);
    CHECKF(strstr(nb_last_error(), "huge.png: image of 65535 x 65535 pixels"), "%s",
           nb_last_error());
    free(p);
}

/* ---------------------------------------------------- channels and size */

static void test_convert(void) {
    uint8_t rgb[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 200, 30, 128, 64, 200};
    nb_image in = {.h = 2, .w = 3, .c = 3, .pix = rgb}, g, back;
    CHECK_OK(nb_image_convert(&in, 1, &g));
    /* Pillow's convert("L") of these colours, and BT.601 within rounding */
    const uint8_t pil[6] = {76, 150, 29, 255, 124, 99};
    for (int i = 0; g.pix && i < 6; i++) {
        double luma = 0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2];
        CHECKF(g.pix[i] == pil[i] && fabs(g.pix[i] - luma) <= 0.505, "pixel %d: %u", i, g.pix[i]);
    }
    CHECK_OK(nb_image_convert(&g, 3, &back));
    for (int i = 0; back.pix && i < 18; i++) CHECK(back.pix[i] == g.pix[i / 3]);
    nb_image_free(&g);
    nb_image_free(&back);
    CHECK(nb_image_convert(&in, 2, &g) == NB_ERR_ARG);
}

/* Reference resizing, written differently from the library's: area
 * averaging as the mean of a supersampled grid (each input pixel repeated
 * `out` times, each output pixel the mean of `in` of those), bilinear from
 * its formula. */
static double ref_axis(const double *v, int in, int out, int k) {
    if (in > out) {
        double sum = 0;
        for (int t = k * in; t < (k + 1) * in; t++) sum += v[t / out];
        return sum / in;
    }
    double x = (k + 0.5) * in / out - 0.5;
    x = x < 0 ? 0 : x > in - 1 ? in - 1 : x;
    int i = (int)floor(x);
    int j = i + 1 < in ? i + 1 : i;
    return v[i] * (1 - (x - i)) + v[j] * (x - i);
}

static void check_resize(int h, int w, int c, int oh, int ow) {
    uint8_t *p = make_pixels(h, w, c, h + w);
    nb_image in = {.h = h, .w = w, .c = c, .pix = p}, out;
    CHECK_OK(nb_image_resize(&in, oh, ow, &out));
    double *row = malloc(sizeof *row * (size_t)(w > h ? w : h)), *mid = malloc(sizeof *mid * (size_t)h * (size_t)ow);
    int bad = 0;
    for (int ch = 0; ch < c; ch++) {
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) row[x] = p[(y * w + x) * c + ch];
            for (int k = 0; k < ow; k++) mid[y * ow + k] = ref_axis(row, w, ow, k);
        }
        for (int x = 0; x < ow; x++) {
            for (int y = 0; y < h; y++) row[y] = mid[y * ow + x];
            for (int k = 0; k < oh; k++) {
                double want = ref_axis(row, h, oh, k);
                int got = out.pix ? out.pix[(k * ow + x) * c + ch] : -1000;
                if (fabs(got - want) > 0.5 + 1e-9 && bad++ < 3)
                    fprintf(stderr, "resize %dx%d -> %dx%d: (%d, %d, %d) is %d, expected %.4f\n", h,
                            w, oh, ow, k, x, ch, got, want);
            }
        }
    }
    CHECKF(bad == 0 && out.h == oh && out.w == ow && out.c == c, "resize %dx%d -> %dx%d", h, w, oh, ow);
    free(row);
    free(mid);
    free(p);
    nb_image_free(&out);
}

static void test_resize(void) {
    check_resize(8, 6, 1, 4, 3);    /* halves */
    check_resize(7, 5, 3, 3, 2);    /* fractions of pixels */
    check_resize(3, 4, 3, 7, 9);    /* growing */
    check_resize(10, 3, 1, 4, 6);   /* one axis shrinks, the other grows */
    check_resize(28, 28, 1, 28, 28); /* the same size */
    check_resize(100, 80, 3, 28, 28);
    check_resize(1, 1, 1, 5, 3);
    /* exact values: 2x2 mean, and a pixel edge */
    uint8_t four[4] = {0, 10, 20, 31};
    nb_image in = {.h = 2, .w = 2, .c = 1, .pix = four}, out;
    CHECK_OK(nb_image_resize(&in, 1, 1, &out));
    CHECK(out.pix && out.pix[0] == 15); /* 61 / 4 = 15.25 */
    nb_image_free(&out);
    /* channels first */
    uint8_t hwc[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, chw[12];
    nb_image rgb = {.h = 2, .w = 2, .c = 3, .pix = hwc};
    CHECK_OK(nb_image_to_chw(&rgb, 3, 2, 2, chw));
    const uint8_t want[12] = {1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12};
    CHECK(memcmp(chw, want, 12) == 0);
    /* converted and resized: the same as doing both steps */
    uint8_t *big = make_pixels(9, 7, 3, 3), got[3 * 4 * 5];
    nb_image b = {.h = 9, .w = 7, .c = 3, .pix = big}, g1, g2, r1;
    CHECK_OK(nb_image_to_chw(&b, 1, 4, 5, got));
    CHECK_OK(nb_image_convert(&b, 1, &g1));
    CHECK_OK(nb_image_resize(&g1, 4, 5, &g2));
    CHECK(g2.pix && memcmp(got, g2.pix, 20) == 0);
    uint8_t grey[7 * 9], got3[3 * 4 * 5];
    nb_image gi = {.h = 9, .w = 7, .c = 1, .pix = grey};
    memcpy(grey, g1.pix, sizeof grey);
    CHECK_OK(nb_image_to_chw(&gi, 3, 4, 5, got3));
    CHECK_OK(nb_image_resize(&gi, 4, 5, &r1));
    for (int ch = 0; r1.pix && ch < 3; ch++) CHECK(memcmp(got3 + 20 * ch, r1.pix, 20) == 0);
    nb_image_free(&g1);
    nb_image_free(&g2);
    nb_image_free(&r1);
    free(big);
}

/* ---------------------------------------------------------------- folders */

typedef struct seen {
    int calls, skips;
    char first_skip[512];
} seen;

static void count_progress(size_t done, size_t total, void *user) {
    seen *s = user;
    s->calls += done <= total;
}

static void count_skip(const char *message, void *user) {
    seen *s = user;
    if (s->skips++ == 0) snprintf(s->first_skip, sizeof s->first_skip, "%s", message);
}

/* name: class folder / file; kind: 'g' grey PNG, 'c' RGB PNG, 'j' RGB JPEG,
 * 'k' grey JPEG, 'x' not an image at all (but named .png), 't' a text file */
static void add_file(const char *root, const char *name, char kind, int h, int w, int seed) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0777);
    *slash = '/';
    int c = kind == 'g' || kind == 'k' ? 1 : 3;
    uint8_t *p = make_pixels(h, w, c, seed);
    if (kind == 'g' || kind == 'c') write_png(path, p, h, w, c);
    else if (kind == 'j' || kind == 'k') write_jpeg(path, p, h, w, c);
    else write_bytes(path, "not an image", 12);
    free(p);
}

static const struct { const char *name; char kind; int h, w; } tree[] = {
    {"dog/b.png", 'g', 28, 28},   {"dog/a.jpg", 'j', 40, 30},  {"dog/c.PNG", 'c', 10, 12},
    {"cat/a.png", 'c', 28, 28},   {"cat/d.jpeg", 'k', 56, 56}, {"cat/notes.txt", 't', 1, 1},
    {"Bird/b.png", 'g', 14, 14},  {"Bird/.hidden.png", 'x', 1, 1},
    {"Bird/e.png", 'c', 100, 3},  {"Bird/sub/z.png", 'g', 5, 5},
};
/* the expected samples: file name order, then class (Bird 0, cat 1, dog 2) */
static const struct { const char *file; int label; } order[] = {
    {"dog/a.jpg", 2}, {"cat/a.png", 1}, {"Bird/b.png", 0}, {"dog/b.png", 2},
    {"dog/c.PNG", 2}, {"cat/d.jpeg", 1}, {"Bird/e.png", 0},
};

static void check_folder(const nb_data *d, const char *root, int channels) {
    const int n = (int)(sizeof order / sizeof order[0]);
    CHECKF(d->n == (size_t)n, "%zu samples", d->n);
    CHECK(d->n_classes == 3 && d->class_names && !strcmp(d->class_names[0], "Bird") &&
          !strcmp(d->class_names[1], "cat") && !strcmp(d->class_names[2], "dog"));
    CHECK(d->ndim == 3 && d->dims[0] == channels && d->dims[1] == 16 && d->dims[2] == 20);
    CHECK(d->x_u8 && d->y && d->y_size == 1 && d->scale == 1);
    uint8_t want[3 * 16 * 20];
    for (int i = 0; i < n && (size_t)i < d->n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", root, order[i].file);
        nb_image im;
        CHECK_OK(nb_image_load(path, &im));
        CHECK_OK(nb_image_to_chw(&im, channels, 16, 20, want));
        CHECKF(d->y[i] == order[i].label && !memcmp(d->x_u8 + (size_t)i * d->sample_size, want,
                                                     d->sample_size),
               "sample %d is not %s", i, order[i].file);
        nb_image_free(&im);
    }
}

static void test_folder(void) {
    char root[256];
    path_of(root, sizeof root, "tree");
    mkdir(root, 0777);
    for (size_t k = 0; k < sizeof tree / sizeof tree[0]; k++)
        add_file(root, tree[k].name, tree[k].kind, tree[k].h, tree[k].w, (int)k);
    seen s = {0};
    nb_folder_opts o = {.channels = 3, .height = 16, .width = 20, .progress = count_progress,
                        .on_skip = count_skip, .user = &s};
    nb_data d, d1;
    size_t skipped = 99;
    CHECK_OK(nb_data_from_folder(root, &o, &d, &skipped));
    CHECK(skipped == 0 && s.calls >= 1 && s.skips == 0);
    check_folder(&d, root, 3);
    /* grey, and the same bytes on one thread as on several */
    o.channels = 1;
    nb_data_free(&d);
    CHECK_OK(nb_set_threads(4));
    CHECK_OK(nb_data_from_folder(root, &o, &d, NULL));
    check_folder(&d, root, 1);
    CHECK_OK(nb_set_threads(1));
    CHECK_OK(nb_data_from_folder(root, &o, &d1, NULL));
    CHECK(d.n == d1.n && !memcmp(d.x_u8, d1.x_u8, d.n * d.sample_size));
    nb_data_free(&d1);
    nb_data_free(&d);
    CHECK_OK(nb_set_threads(2));
    /* a corrupt file: an error naming it; with skip_bad, counted */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/cat/broken.png", root);
    add_file(root, "cat/broken.png", 'x', 1, 1, 0);
    CHECK(nb_data_from_folder(root, &o, &d, &skipped) == NB_ERR_FORMAT);
    CHECKF(strstr(nb_last_error(), bad) && strstr(nb_last_error(), "not a PNG or JPEG"), "%s",
           nb_last_error());
    CHECK(d.x_u8 == NULL && d.n == 0);
    o.skip_bad = 1;
    o.channels = 3;
    CHECK_OK(nb_data_from_folder(root, &o, &d, &skipped));
    CHECK(skipped == 1 && s.skips == 1 && strstr(s.first_skip, bad));
    check_folder(&d, root, 3);
    nb_data_free(&d);
    remove(bad);
}

static void test_folder_forms(void) {
    char root[256], path[512];
    nb_folder_opts o = {.channels = 1, .height = 4, .width = 4};
    nb_data d;
    /* a folder of images without classes, and one image: no labels */
    path_of(root, sizeof root, "flat");
    mkdir(root, 0777);
    add_file(tmp, "flat/2.png", 'g', 4, 4, 2);
    add_file(tmp, "flat/1.jpg", 'k', 8, 8, 1);
    path_of(root, sizeof root, "flat");
    CHECK_OK(nb_data_from_folder(root, &o, &d, NULL));
    CHECK(d.n == 2 && d.n_classes == 0 && d.y == NULL && d.y_size == 0 && d.class_names == NULL);
    uint8_t *p = make_pixels(4, 4, 1, 2);
    CHECK(d.x_u8 && memcmp(d.x_u8 + 16, p, 16) == 0); /* 2.png second, unchanged */
    free(p);
    nb_data_free(&d);
    snprintf(path, sizeof path, "%s/2.png", root);
    CHECK_OK(nb_data_from_folder(path, &o, &d, NULL));
    CHECK(d.n == 1 && d.y == NULL);
    nb_data_free(&d);
    /* an empty class folder, an empty folder, a missing one, bad options */
    path_of(root, sizeof root, "emptyclass");
    mkdir(root, 0777);
    add_file(tmp, "emptyclass/a/x.png", 'g', 2, 2, 0);
    snprintf(path, sizeof path, "%s/b", root);
    mkdir(path, 0777);
    CHECK(nb_data_from_folder(root, &o, &d, NULL) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), path) && strstr(nb_last_error(), "class folder without"), "%s",
           nb_last_error());
    path_of(root, sizeof root, "nothing");
    mkdir(root, 0777);
    CHECK(nb_data_from_folder(root, &o, &d, NULL) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), "no class folders"), "%s", nb_last_error());
    path_of(root, sizeof root, "absent");
    CHECK(nb_data_from_folder(root, &o, &d, NULL) == NB_ERR_IO);
    CHECKF(strstr(nb_last_error(), root), "%s", nb_last_error());
    o.channels = 2;
    CHECK(nb_data_from_folder(root, &o, &d, NULL) == NB_ERR_ARG);
    /* every image bad, skipped: nothing left is an error */
    path_of(root, sizeof root, "allbad");
    mkdir(root, 0777);
    add_file(tmp, "allbad/k/a.png", 'x', 1, 1, 0);
    o.channels = 1;
    o.skip_bad = 1;
    size_t skipped;
    CHECK(nb_data_from_folder(root, &o, &d, &skipped) == NB_ERR_FORMAT && skipped == 1);
    CHECKF(strstr(nb_last_error(), "none of the 1 images"), "%s", nb_last_error());
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f) {
    (void)st, (void)flag, (void)f;
    return remove(path);
}

/* --make-folder DIR: an image folder for tests/test_images_cli.sh.
 * DIR/train and DIR/test hold classes blue, green and red: noisy patches of
 * their colour, as RGB PNG, grey PNG and RGB JPEG of several sizes; then
 * DIR/train/red/broken.png is not an image. */
static int make_folder(const char *dir) {
    static const char *const names[3] = {"blue", "green", "red"};
    static const int colour[3][3] = {{20, 20, 160}, {60, 230, 60}, {230, 60, 40}};
    static const char kinds[3] = {'c', 'g', 'j'};
    static const int sizes[4][2] = {{8, 8}, {12, 10}, {5, 7}, {20, 16}};
    unsigned s = 1;
    for (int split = 0; split < 2; split++) {
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < (split ? 6 : 24); i++) {
                int h = sizes[i % 4][0], w = sizes[i % 4][1];
                char kind = kinds[i % 3], name[256];
                int c = kind == 'g' ? 1 : 3;
                uint8_t *p = malloc((size_t)h * (size_t)w * 3);
                for (int j = 0; j < h * w * 3; j++) {
                    s = s * 1103515245u + 12345u;
                    int v = colour[k][j % 3] + (int)(s >> 16) % 41 - 20;
                    p[j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
                if (c == 1)
                    for (int j = 0; j < h * w; j++)
                        p[j] = (uint8_t)((p[3 * j] * 19595u + p[3 * j + 1] * 38470u +
                                          p[3 * j + 2] * 7471u + 0x8000u) >> 16);
                snprintf(name, sizeof name, "%s/%s", dir, split ? "test" : "train");
                mkdir(name, 0777);
                snprintf(name, sizeof name, "%s/%s/%s/%03d.%s", dir, split ? "test" : "train",
                         names[k], i, kind == 'j' ? "jpg" : "png");
                char *slash = strrchr(name, '/');
                *slash = '\0';
                mkdir(name, 0777);
                *slash = '/';
                if (kind == 'j') write_jpeg(name, p, h, w, 3);
                else write_png(name, p, h, w, c);
                free(p);
            }
    }
    char bad[512];
    snprintf(bad, sizeof bad, "%s/train/red/broken.png", dir);
    write_bytes(bad, "\x89PNG\r\n\x1a\n broken", 16);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--make-folder") == 0) {
        mkdir(argv[2], 0777);
        return make_folder(argv[2]);
    }
    snprintf(tmp, sizeof tmp, "/tmp/nb_test_image_XXXXXX");
    if (!mkdtemp(tmp)) return perror("mkdtemp"), 1;
    test_png_kinds();
    test_jpeg();
    test_bad_files();
    test_convert();
    test_resize();
    test_folder();
    test_folder_forms();
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    TEST_END();
}
