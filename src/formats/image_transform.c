/* Image conversions: channels (grey <-> RGB) and size, and the
 * channels-first layout models take.
 *
 * Grey from RGB is ITU-R BT.601 luma, computed exactly as Pillow's
 * convert("L"): (19595 R + 38470 G + 7471 B + 32768) >> 16.  RGB from grey
 * repeats the grey value.
 *
 * Resizing is separable, each axis on its own:
 *   - shrinking: area averaging.  An output pixel covers in/out input pixels
 *     (fractions included) and is their mean weighted by the area covered
 *     (for whole-number factors, the plain mean Pillow's BOX filter gives);
 *   - growing: bilinear interpolation between the two nearest input pixels,
 *     pixel centres aligned (x_in = (x_out + 0.5) * in / out - 0.5, clamped
 *     at the edges), as Pillow's BILINEAR and align_corners=False do;
 *   - the same size: a copy.
 * The sums are in double and rounded to the nearest byte once, at the end. */
#include "io.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One axis of a resize: output k reads inputs first[k] .. first[k]+count[k]-1
 * with weights w[k * taps ...]. */
typedef struct axis_plan {
    int out, taps;
    int *first, *count;
    double *w;
} axis_plan;

static void plan_free(axis_plan *p) {
    free(p->first);
    free(p->count);
    free(p->w);
}

static void plan_area(axis_plan *p, int in) {
    const double s = (double)in / p->out;
    for (int k = 0; k < p->out; k++) {
        /* [lo, hi) in input pixels; exact when in * out fits a double */
        double lo = (double)k * in / p->out, hi = (double)(k + 1) * in / p->out;
        int i0 = (int)lo, i1 = (int)ceil(hi) - 1;
        if (i1 > in - 1) i1 = in - 1;
        if (i1 < i0) i1 = i0;
        p->first[k] = i0;
        p->count[k] = i1 - i0 + 1;
        for (int i = i0; i <= i1; i++) {
            double a = i > lo ? i : lo, b = i + 1 < hi ? i + 1 : hi;
            p->w[(size_t)k * (size_t)p->taps + (size_t)(i - i0)] = (b - a) / s;
        }
    }
}

static void plan_linear(axis_plan *p, int in) {
    for (int k = 0; k < p->out; k++) {
        double x = (k + 0.5) * in / p->out - 0.5;
        if (x < 0) x = 0;
        if (x > in - 1) x = in - 1;
        int i0 = (int)x;
        double f = x - i0;
        if (i0 == in - 1) f = 0;
        p->first[k] = i0;
        p->count[k] = f > 0 ? 2 : 1;
        p->w[(size_t)k * 2] = 1 - f;
        p->w[(size_t)k * 2 + 1] = f;
    }
}

static nb_status plan_axis(axis_plan *p, int in, int out) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->taps = in > out ? (int)((in + out - 1) / out) + 1 : 2;
    p->first = malloc(sizeof *p->first * (size_t)out);
    p->count = malloc(sizeof *p->count * (size_t)out);
    p->w = malloc(sizeof *p->w * (size_t)out * (size_t)p->taps);
    if (!p->first || !p->count || !p->w) {
        plan_free(p);
        return nb_err(NB_ERR_NOMEM, "nb_image_resize: out of memory");
    }
    if (in > out) plan_area(p, in);
    else plan_linear(p, in);
    return NB_OK;
}

static uint8_t to_byte(double v) {
    v += 0.5;
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
}

/* Rows first (into tmp, in double), then columns. */
static void resize_run(const nb_image *in, const axis_plan *px, const axis_plan *py,
                       double *tmp, nb_image *out) {
    const int c = in->c, wo = px->out;
    for (int y = 0; y < in->h; y++) {
        const uint8_t *row = in->pix + (size_t)y * (size_t)in->w * (size_t)c;
        double *t = tmp + (size_t)y * (size_t)wo * (size_t)c;
        for (int k = 0; k < wo; k++)
            for (int ch = 0; ch < c; ch++) {
                double sum = 0;
                const double *w = px->w + (size_t)k * (size_t)px->taps;
                for (int i = 0; i < px->count[k]; i++)
                    sum += w[i] * row[(size_t)(px->first[k] + i) * (size_t)c + (size_t)ch];
                t[(size_t)k * (size_t)c + (size_t)ch] = sum;
            }
    }
    const size_t stride = (size_t)wo * (size_t)c;
    for (int k = 0; k < py->out; k++) {
        const double *w = py->w + (size_t)k * (size_t)py->taps;
        uint8_t *o = out->pix + (size_t)k * stride;
        for (size_t j = 0; j < stride; j++) {
            double sum = 0;
            for (int i = 0; i < py->count[k]; i++)
                sum += w[i] * tmp[(size_t)(py->first[k] + i) * stride + j];
            o[j] = to_byte(sum);
        }
    }
}

static nb_status check_image(const nb_image *im, const char *fn) {
    if (!im || !im->pix || im->h < 1 || im->w < 1 || (im->c != 1 && im->c != 3))
        return nb_err(NB_ERR_ARG, "%s: not a decoded grey or RGB image", fn);
    return NB_OK;
}

nb_status nb_image_resize(const nb_image *in, int h, int w, nb_image *out) {
    const char *fn = "nb_image_resize";
    if (!out) return nb_err(NB_ERR_ARG, "%s: out is NULL", fn);
    memset(out, 0, sizeof *out);
    nb_status s = check_image(in, fn);
    if (s != NB_OK) return s;
    if (h < 1 || w < 1 || h > 65535 || w > 65535)
        return nb_err(NB_ERR_ARG, "%s: size %d x %d (expected 1 to 65535 each)", fn, w, h);
    size_t bytes = (size_t)h * (size_t)w * (size_t)in->c;
    axis_plan px, py;
    if ((s = plan_axis(&px, in->w, w)) != NB_OK) return s;
    if ((s = plan_axis(&py, in->h, h)) != NB_OK) {
        plan_free(&px);
        return s;
    }
    double *tmp = malloc(sizeof *tmp * (size_t)in->h * (size_t)w * (size_t)in->c);
    out->pix = malloc(bytes);
    if (tmp && out->pix) {
        out->h = h, out->w = w, out->c = in->c;
        resize_run(in, &px, &py, tmp, out);
    } else {
        nb_image_free(out);
        s = nb_err(NB_ERR_NOMEM, "%s: out of memory for %d x %d pixels", fn, w, h);
    }
    free(tmp);
    plan_free(&px);
    plan_free(&py);
    return s;
}

nb_status nb_image_convert(const nb_image *in, int channels, nb_image *out) {
    const char *fn = "nb_image_convert";
    if (!out) return nb_err(NB_ERR_ARG, "%s: out is NULL", fn);
    memset(out, 0, sizeof *out);
    nb_status s = check_image(in, fn);
    if (s != NB_OK) return s;
    if (channels != 1 && channels != 3)
        return nb_err(NB_ERR_ARG, "%s: %d channels (expected 1 or 3)", fn, channels);
    size_t px = (size_t)in->h * (size_t)in->w;
    if (!(out->pix = malloc(px * (size_t)channels)))
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", fn);
    out->h = in->h, out->w = in->w, out->c = channels;
    const uint8_t *p = in->pix;
    for (size_t i = 0; i < px; i++) {
        if (in->c == channels) {
            memcpy(out->pix + i * (size_t)channels, p + i * (size_t)channels, (size_t)channels);
        } else if (channels == 1) {
            const uint8_t *rgb = p + 3 * i;
            out->pix[i] = (uint8_t)((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u +
                                     0x8000u) >> 16);
        } else {
            memset(out->pix + 3 * i, p[i], 3);
        }
    }
    return NB_OK;
}

/* HWC to CHW. */
static void to_planes(const nb_image *im, uint8_t *chw) {
    const size_t px = (size_t)im->h * (size_t)im->w;
    for (int ch = 0; ch < im->c; ch++)
        for (size_t i = 0; i < px; i++)
            chw[(size_t)ch * px + i] = im->pix[i * (size_t)im->c + (size_t)ch];
}

nb_status nb_image_to_chw(const nb_image *in, int channels, int h, int w, uint8_t *chw) {
    nb_status s = check_image(in, "nb_image_to_chw");
    if (s != NB_OK) return s;
    if (!chw) return nb_err(NB_ERR_ARG, "nb_image_to_chw: chw is NULL");
    if (in->c == channels && in->h == h && in->w == w) {
        to_planes(in, chw);
        return NB_OK;
    }
    /* fewer channels first, more channels last: the same result as
     * converting first (repeating grey commutes with resizing), less work */
    nb_image a = {0}, b = {0};
    if (channels < in->c) {
        s = nb_image_convert(in, channels, &a);
        if (s == NB_OK) s = nb_image_resize(&a, h, w, &b);
    } else {
        s = nb_image_resize(in, h, w, &a);
        if (s == NB_OK) s = nb_image_convert(&a, channels, &b);
    }
    if (s == NB_OK) to_planes(&b, chw);
    nb_image_free(&a);
    nb_image_free(&b);
    return s;
}
