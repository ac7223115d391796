/* Sample layouts: channels last (H W C, as NumPy image arrays and image
 * libraries store pixels) turned into channels first (C H W, what the
 * convolutions and the model format's `input C H W` take). */
#include "io.h"

#include <stdlib.h>
#include <string.h>

nb_status nb_data_hwc_to_chw(nb_data *d) {
    if (!d) return nb_err(NB_ERR_ARG, "layout: the data are NULL");
    if (d->mean)
        return nb_err(NB_ERR_STATE, "layout: the data are already standardised; change the "
                      "layout first");
    if (d->ndim == 2) { /* one channel: [H, W] is [1, H, W] as it is stored */
        d->dims[2] = d->dims[1];
        d->dims[1] = d->dims[0];
        d->dims[0] = 1;
        d->ndim = 3;
        return NB_OK;
    }
    if (d->ndim != 3) {
        char sh[64];
        return nb_err(NB_ERR_SHAPE, "layout=hwc: samples are %s, not [H, W, C]",
                      nb_shape_str(sh, sizeof sh, d->ndim, d->dims));
    }
    size_t h = (size_t)d->dims[0], w = (size_t)d->dims[1], c = (size_t)d->dims[2];
    size_t f = d->sample_size, elem = d->x_u8 ? 1 : sizeof(nb_real);
    unsigned char *base = d->x_u8 ? d->x_u8 : (unsigned char *)d->x_real;
    unsigned char *tmp = malloc(f > 0 ? f * elem : 1);
    if (!tmp) return nb_err(NB_ERR_NOMEM, "layout: out of memory");
    for (size_t i = 0; i < d->n; i++) {
        unsigned char *s = base + i * f * elem;
        memcpy(tmp, s, f * elem);
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++)
                for (size_t k = 0; k < c; k++)
                    memcpy(s + ((k * h + y) * w + x) * elem, tmp + ((y * w + x) * c + k) * elem,
                           elem);
    }
    free(tmp);
    d->dims[0] = (int)c;
    d->dims[1] = (int)h;
    d->dims[2] = (int)w;
    return NB_OK;
}
