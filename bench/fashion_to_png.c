/* Write Fashion-MNIST as an image folder tree, one grey PNG per image:
 *     OUT/train/C-NAME/NNNNN.png   (60,000)    OUT/test/C-NAME/NNNNN.png (10,000)
 * C is the class number, so the class folders sort in label order, and NNNNN
 * the image's index in its IDX file, so nabla's file-name order reads the
 * samples back in the IDX order: `--data folder:OUT/train` then gives the
 * same samples, labels and order as `--data fashion-mnist`.
 * Usage: fashion-to-png OUT   (the data set from $NABLA_DATA_DIR or
 * /usr/share/datasets, as nabla finds it) */
#include "nabla.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "fashion-to-png: %s: %s\n", path, strerror(errno));
    return 1;
}

static int write_png(const char *path, const unsigned char *pix, int h, int w) {
    FILE *f = fopen(path, "wb");
    if (!f) return fprintf(stderr, "fashion-to-png: %s: %s\n", path, strerror(errno)), 1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return fprintf(stderr, "fashion-to-png: %s: cannot write\n", path), 1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, pix + (size_t)y * (size_t)w);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f) != 0;
}

static int write_split(const char *out, const char *split) {
    nb_data d;
    if (nb_data_load("fashion-mnist", split, NULL, &d) != NB_OK)
        return fprintf(stderr, "fashion-to-png: %s\n", nb_last_error()), 1;
    char dir[2048], path[4200];
    snprintf(dir, sizeof dir, "%s/%s", out, split);
    int rc = make_dir(dir);
    char names[10][64];
    for (int k = 0; !rc && k < d.n_classes && k < 10; k++) {
        snprintf(names[k], sizeof names[k], "%d-%s", k, d.class_names[k]);
        for (char *p = names[k]; *p; p++)
            if (*p == '/' || *p == ' ') *p = '_';
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        rc = make_dir(path);
    }
    for (size_t i = 0; !rc && i < d.n; i++) {
        snprintf(path, sizeof path, "%s/%s/%05zu.png", dir, names[(int)d.y[i]], i);
        rc = write_png(path, d.x_u8 + i * d.sample_size, d.dims[1], d.dims[2]);
    }
    if (!rc) printf("%s: %zu images\n", dir, d.n);
    nb_data_free(&d);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) return fputs("usage: fashion-to-png OUT\n", stderr), 2;
    if (make_dir(argv[1])) return 1;
    return write_split(argv[1], "train") || write_split(argv[1], "test");
}
