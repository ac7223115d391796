/* im2col and col2im: the data movement that turns a 2-D convolution into one
 * matrix product.
 *
 * For one image x [C, H, W] (the channels of one group), the column matrix
 * has C*kh*kw rows, row r = (c*kh + i)*kw + j, and Ho*Wo columns (output
 * positions, row-major):
 *     col[r][oh*Wo + ow] = x[c][oh*sh - ph + i*dh][ow*sw - pw + j*dw]
 * with 0 outside the image (zero padding).  Then y [C_out, Ho*Wo] = W [C_out,
 * C*kh*kw] · col.  Rows of col are ld apart, so the columns of several images
 * can sit side by side in one matrix (ld = images * Ho*Wo) and one GEMM does
 * them all.
 *
 * Both functions walk col sequentially, row by row; each row reads (or
 * updates) one plane of x, which stays in cache.  Pure loops: no graph, no
 * allocation. */
#ifndef NB_IM2COL_H
#define NB_IM2COL_H

#include "nabla.h"

#include <stddef.h>

typedef struct nb_conv_geom {
    int C, H, W;        /* channels (of one group) and input plane            */
    int kh, kw;         /* kernel                                             */
    int sh, sw;         /* stride (>= 1)                                      */
    int ph, pw;         /* zero padding on each side (>= 0)                   */
    int dh, dw;         /* dilation (>= 1)                                    */
    int Ho, Wo;         /* output plane                                       */
} nb_conv_geom;

/* Fill C*kh*kw rows of Ho*Wo values (row r at col + r*ld) from x [C, H, W]. */
void nb_im2col(const nb_conv_geom *g, const nb_real *x, nb_real *col, size_t ld);

/* Rows [r0, r0+rows) and columns [p0, p0+n) of that matrix, n <= width, into
 * dst[k*width + j] (row r0+k, column p0+j), zero for j in [n, width): a
 * matrix product that packs its operand in blocks takes them straight from
 * the image, and the whole matrix is never written. */
void nb_im2col_block(const nb_conv_geom *g, const nb_real *x, int r0, int rows, int p0, int n,
                     nb_real *dst, int width);

/* The adjoint: x [C, H, W] += the column matrix scattered back (overlapping
 * windows add up). */
void nb_col2im(const nb_conv_geom *g, const nb_real *col, size_t ld, nb_real *x);

/* x [C, H, W] with its padding written out: dst [C, H + 2 ph, W + 2 pw],
 * zeros around each plane. */
void nb_pad_image(const nb_conv_geom *g, const nb_real *x, nb_real *dst);

#endif
