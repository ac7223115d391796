/* Residual connections: out = main + shortcut(x).  The shortcut is x itself
 * when the shapes agree, else ResNet's projection: a 1x1 convolution without
 * bias (stride = the spatial reduction) followed by batch norm, named like
 * torchvision's "downsample" (<name>.downsample.0.weight, .1.running_mean, ...). */
#include "../core/internal.h"

#include <stdio.h>
#include <string.h>

nb_node nb_residual(nb_graph *g, nb_node main_path, nb_node x, const char *name) {
    nb_node in[2] = {main_path, x};
    if (!nb__begin(g, "residual", 2, in)) return NB_NONE;
    const nb_node_t *M = nb__node(g, main_path), *X = nb__node(g, x);
    int same = M->ndim == X->ndim && M->batched == X->batched &&
               memcmp(M->dims, X->dims, sizeof(int) * (size_t)M->ndim) == 0;
    if (same) return nb_add(g, main_path, x);
    char sm[96], sx[96];
    nb_shape_str(sm, sizeof sm, M->ndim, M->dims);
    nb_shape_str(sx, sizeof sx, X->ndim, X->dims);
    if (M->ndim != 4 || X->ndim != 4 || !M->batched || !X->batched)
        return nb__fail(g, NB_ERR_SHAPE, "residual: shapes %s and %s differ and are not both "
                        "images [B, C, H, W], so no 1x1 projection can join them", sm, sx);
    /* the stride of a 1x1 convolution without padding that gives M's size */
    int stride = 1;
    while (stride < X->dims[2] && (X->dims[2] - 1) / stride + 1 > M->dims[2]) stride++;
    if ((X->dims[2] - 1) / stride + 1 != M->dims[2] ||
        (X->dims[3] - 1) / stride + 1 != M->dims[3])
        return nb__fail(g, NB_ERR_SHAPE, "residual: no strided 1x1 projection maps %s to %s",
                        sx, sm);
    char base[48], pname[64];
    if (name && name[0]) snprintf(base, sizeof base, "%s", name);
    else nb__auto_name(g, "residual", base, sizeof base);
    nb_conv_opts o = {.stride_h = stride, .stride_w = stride, .no_bias = 1};
    snprintf(pname, sizeof pname, "%s.downsample.0", base);
    nb_node p = nb_conv2d_layer(g, x, M->dims[1], 1, 1, &o, pname);
    snprintf(pname, sizeof pname, "%s.downsample.1", base);
    p = nb_batch_norm(g, p, pname, NULL);
    return nb_add(g, main_path, p);
}
