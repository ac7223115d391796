#define _POSIX_C_SOURCE 200809L
#include "folder_source.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "progress.h"

#define SHOW_SKIPPED 5 /* skipped files named one by one; then only counted */

static struct {
    int channels, height, width; /* 0: the model takes no images */
    char shape[64];              /* the model's input shape, for messages */
    int skip_bad, quiet;
} setup;

void folder_source_setup(const nb_model *m, int skip_bad, int quiet) {
    int ndim, dims[NB_MAX_DIMS];
    memset(&setup, 0, sizeof setup);
    setup.skip_bad = skip_bad;
    setup.quiet = quiet;
    if (nb_node_shape(m->graph, m->input, &ndim, dims) != NB_OK) return;
    int first = nb_node_is_batched(m->graph, m->input) ? 1 : 0;
    for (int d = first, used = 0; d < ndim && used < (int)sizeof setup.shape - 12; d++)
        used += snprintf(setup.shape + used, sizeof setup.shape - (size_t)used, "%s%d",
                         d > first ? " " : "", dims[d]);
    if (ndim - first == 3 && (dims[first] == 1 || dims[first] == 3)) {
        setup.channels = dims[first];
        setup.height = dims[first + 1];
        setup.width = dims[first + 2];
    }
}

int folder_source_is_image(const char *spec) {
    const char *dot = strrchr(spec, '.');
    return dot && !strchr(dot, '/') && (strcasecmp(dot, ".png") == 0 ||
                                        strcasecmp(dot, ".jpg") == 0 ||
                                        strcasecmp(dot, ".jpeg") == 0);
}

typedef struct report {
    const char *path;
    int tty;
    double start, last;
    size_t skipped;
} report;

static void on_progress(size_t done, size_t total, void *user) {
    report *r = user;
    double now = progress_now();
    if (setup.quiet || !r->tty || (done < total && now - r->last < 0.1)) return;
    r->last = now;
    fprintf(stderr, "\rdecoding %s: %zu/%zu images", r->path, done, total);
    fflush(stderr);
}

static void on_skip(const char *message, void *user) {
    report *r = user;
    if (++r->skipped <= SHOW_SKIPPED) fprintf(stderr, "nabla: skipped %s\n", message);
}

nb_status folder_source_load(const char *path, nb_data *out) {
    memset(out, 0, sizeof *out);
    if (!setup.channels)
        return nb_set_error(NB_ERR_ARG, "%s: images need a model whose input is C H W with 1 "
                            "(grey) or 3 (RGB) channels; this one takes %s", path,
                            setup.shape[0] ? setup.shape : "no input");
    int formats = nb_image_formats();
    if (formats != (NB_IMAGE_PNG | NB_IMAGE_JPEG))
        return nb_set_error(NB_ERR_ARG, "%s: image data need nabla built with libpng and "
                            "libjpeg (install libpng-dev and libjpeg62-turbo-dev, or run "
                            "make deps, then rebuild)", path);
    report r = {.path = path, .tty = isatty(fileno(stderr)), .start = progress_now()};
    nb_folder_opts o = {.channels = setup.channels, .height = setup.height,
                        .width = setup.width, .skip_bad = setup.skip_bad,
                        .progress = on_progress, .on_skip = on_skip, .user = &r};
    size_t skipped = 0;
    nb_status s = nb_data_from_folder(path, &o, out, &skipped);
    if (r.tty && !setup.quiet) fputc('\n', stderr);
    if (s != NB_OK && !setup.skip_bad && s == NB_ERR_FORMAT)
        return nb_set_error(s, "%s (--skip-bad skips images that do not decode)",
                            nb_last_error());
    if (s != NB_OK) return s;
    if (skipped)
        fprintf(stderr, "nabla: %s: %zu image%s skipped (do not decode), %zu used\n", path,
                skipped, skipped == 1 ? "" : "s", out->n);
    double t = progress_now() - r.start;
    size_t n = out->n + skipped;
    char classes[32] = "";
    if (out->n_classes) snprintf(classes, sizeof classes, ", %d classes", out->n_classes);
    if (!setup.quiet)
        fprintf(stderr, "%s: %zu image%s%s, as %d x %d x %d, decoded in %.2f s (%.0f images/s)\n",
                path, n, n == 1 ? "" : "s", classes, setup.channels, setup.height, setup.width, t,
                t > 0 ? (double)n / t : 0);
    return NB_OK;
}
