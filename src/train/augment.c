/* Image augmentation of training batches: a horizontal flip and a random
 * crop of the zero-padded image, drawn per (seed, epoch, position in the
 * epoch's order) so runs stay reproducible and resumable at any batch. */
#include "train.h"

#include <stdlib.h>
#include <string.h>

void nb_augment_image(const nb_real *in, nb_real *out, int c, int h, int w, int flip, int dy,
                      int dx) {
    for (int ch = 0; ch < c; ch++) {
        const nb_real *src = in + (size_t)ch * h * w;
        nb_real *dst = out + (size_t)ch * h * w;
        for (int i = 0; i < h; i++) {
            int si = i + dy;
            for (int j = 0; j < w; j++) {
                int sj = j + dx;
                if (flip) sj = w - 1 - sj;
                dst[(size_t)i * w + j] =
                    si >= 0 && si < h && sj >= 0 && sj < w ? src[(size_t)si * w + sj] : 0;
            }
        }
    }
}

int nb__image_dims(const nb_node_t *in, int *c, int *h, int *w) {
    if (in->ndim == 4) *c = in->dims[1], *h = in->dims[2], *w = in->dims[3];
    else if (in->ndim == 3) *c = 1, *h = in->dims[1], *w = in->dims[2];
    else return 0;
    return 1;
}

nb_status nb__augment_init(nb__augment *a, const nb_graph *g, const nb_fit_config *cfg) {
    memset(a, 0, sizeof *a);
    a->flip = cfg->augment_flip;
    a->crop = cfg->augment_crop;
    if (!a->flip && !a->crop) return NB_OK;
    nb__image_dims(&g->nodes[cfg->input], &a->c, &a->h, &a->w);
    a->plain = malloc((size_t)a->c * a->h * a->w * sizeof *a->plain);
    return a->plain ? NB_OK : nb_err(NB_ERR_NOMEM, "nb_fit: out of memory");
}

void nb__augment_free(nb__augment *a) {
    free(a->plain);
    a->plain = NULL;
}

void nb__augment_batch(const nb__augment *a, nb_real *x, int bs, size_t first, uint64_t seed,
                       int epoch) {
    if (!a->flip && !a->crop) return;
    const size_t xs = (size_t)a->c * a->h * a->w;
    for (int r = 0; r < bs; r++) {
        /* its own generator per (epoch, position): resumable at any batch */
        nb_rng ar;
        nb__epoch_rng(&ar, seed ^ 0xA5A5A5A5A5A5A5A5ull, epoch);
        uint64_t pos = nb__mix64((uint64_t)(first + (size_t)r) + 1);
        for (int q = 0; q < 4; q++) ar.s[q] ^= pos * (2 * (uint64_t)q + 1);
        int flip = a->flip ? (int)nb_rng_below(&ar, 2) : 0;
        int p = a->crop;
        int dy = p ? (int)nb_rng_below(&ar, (uint64_t)(2 * p + 1)) - p : 0;
        int dx = p ? (int)nb_rng_below(&ar, (uint64_t)(2 * p + 1)) - p : 0;
        nb_real *row = x + (size_t)r * xs;
        memcpy(a->plain, row, xs * sizeof *row);
        nb_augment_image(a->plain, row, a->c, a->h, a->w, flip, dy, dx);
    }
}
