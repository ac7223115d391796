#include "svgplot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PANEL_W = 460, PANEL_H = 340, MARGIN_L = 64, MARGIN_R = 16, MARGIN_T = 56, MARGIN_B = 48 };

static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                "#9467bd", "#8c564b", "#e377c2", "#17becf"};

/* Write s with XML special characters escaped. */
static void put_text(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about n ticks. */
static double nice_step(double range, int n) {
    double raw = range / n, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

static void data_range(const svg_panel *p, int axis_y, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int s = 0; s < p->n_series; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            double v = axis_y ? p->series[s].y[i] : p->series[s].x[i];
            if (!isfinite(v) || (axis_y && p->log_y && v <= 0)) continue;
            if (axis_y && p->log_y) v = log10(v);
            if (v < *lo) *lo = v;
            if (v > *hi) *hi = v;
        }
    if (!isfinite(*lo)) *lo = 0, *hi = 1;
    if (*hi - *lo < 1e-12) *lo -= 0.5, *hi += 0.5;
}

static int integer_x(const svg_panel *p) {
    for (int s = 0; s < p->n_series; s++)
        for (int i = 0; i < p->series[s].n; i++)
            if (p->series[s].x[i] != floor(p->series[s].x[i])) return 0;
    return 1;
}

/* ------------------------------------------------------------ contours */

/* Marching squares.  Every grid edge a level crosses gets one crossing
 * point; each cell joins its crossings in pairs, so a crossing is linked to at
 * most two others (one per cell on either side of its edge).  Following the
 * links turns the cell segments into a few long polylines, which keeps the
 * file small.  Edges are numbered horizontals first: (i, j)-(i+1, j) is
 * j*(nx-1) + i, then verticals: (i, j)-(i, j+1) is nh + j*nx + i. */
typedef struct contour_map {
    const svg_contour *c;
    double level, left, right, top, bottom;
    int nh, ne;
    int (*link)[2];
    unsigned char *seen;
} contour_map;

static double grid_z(const svg_contour *c, int i, int j) { return c->z[(size_t)j * c->nx + i]; }

/* Pixel position of the level's crossing on edge e. */
static void crossing(const contour_map *m, int e, double *px, double *py) {
    const svg_contour *c = m->c;
    int i0, j0, i1, j1;
    if (e < m->nh) i0 = e % (c->nx - 1), j0 = e / (c->nx - 1), i1 = i0 + 1, j1 = j0;
    else i0 = (e - m->nh) % c->nx, j0 = (e - m->nh) / c->nx, i1 = i0, j1 = j0 + 1;
    double za = grid_z(c, i0, j0), zb = grid_z(c, i1, j1);
    double t = za == zb ? 0.5 : (m->level - za) / (zb - za);
    double gx = i0 + t * (i1 - i0), gy = j0 + t * (j1 - j0);
    *px = m->left + gx / (c->nx - 1) * (m->right - m->left);
    *py = m->bottom - gy / (c->ny - 1) * (m->bottom - m->top);
}

static void add_link(contour_map *m, int a, int b) {
    int *la = m->link[a], *lb = m->link[b];
    la[la[0] < 0 ? 0 : 1] = b;
    lb[lb[0] < 0 ? 0 : 1] = a;
}

/* Link the crossings of every cell for the current level. */
static void contour_cells(contour_map *m) {
    const svg_contour *c = m->c;
    const double v = m->level;
    for (int e = 0; e < m->ne; e++) m->link[e][0] = m->link[e][1] = -1;
    memset(m->seen, 0, (size_t)m->ne);
    for (int j = 0; j + 1 < c->ny; j++)
        for (int i = 0; i + 1 < c->nx; i++) {
            double a = grid_z(c, i, j), b = grid_z(c, i + 1, j);
            double d = grid_z(c, i, j + 1), cc = grid_z(c, i + 1, j + 1);
            if (!isfinite(a) || !isfinite(b) || !isfinite(cc) || !isfinite(d)) continue;
            int bottom = j * (c->nx - 1) + i, top = (j + 1) * (c->nx - 1) + i;
            int left = m->nh + j * c->nx + i, right = left + 1;
            int ia = a >= v, ib = b >= v, ic = cc >= v, id = d >= v;
            int cut[4], n = 0; /* crossed edges, counter-clockwise from the bottom */
            if (ia != ib) cut[n++] = bottom;
            if (ib != ic) cut[n++] = right;
            if (ic != id) cut[n++] = top;
            if (id != ia) cut[n++] = left;
            if (n == 2) {
                add_link(m, cut[0], cut[1]);
            } else if (n == 4) {
                /* a saddle cell: the centre's side decides which corners connect */
                int centre_in = (a + b + cc + d) / 4 >= v;
                if (centre_in == ia) add_link(m, bottom, right), add_link(m, top, left);
                else add_link(m, bottom, left), add_link(m, right, top);
            }
        }
}

/* Follow the links from edge start and write one polyline. */
static void contour_walk(FILE *f, contour_map *m, int start) {
    int cur = start, n = 0;
    for (;;) {
        double px, py;
        crossing(m, cur, &px, &py);
        fprintf(f, "%s%.1f,%.1f", n++ ? " " : "M", px, py);
        m->seen[cur] = 1;
        int next = -1;
        for (int k = 0; k < 2; k++)
            if (m->link[cur][k] >= 0 && !m->seen[m->link[cur][k]]) next = m->link[cur][k];
        if (next < 0) {
            if (n > 2 && (m->link[cur][0] == start || m->link[cur][1] == start)) fputs("Z", f);
            return;
        }
        cur = next;
    }
}

/* The level curves of c, one <path class='contour'> per level, inside the
 * plot box left..right x top..bottom. */
static void contour_paths(FILE *f, const svg_contour *c, double left, double right, double top,
                          double bottom) {
    if (!c->z || !c->levels || c->nx < 2 || c->ny < 2) return;
    contour_map m = {.c = c, .left = left, .right = right, .top = top, .bottom = bottom};
    m.nh = (c->nx - 1) * c->ny;
    m.ne = m.nh + c->nx * (c->ny - 1);
    m.link = malloc((size_t)m.ne * sizeof *m.link);
    m.seen = malloc((size_t)m.ne);
    if (!m.link || !m.seen) {
        free(m.link);
        free(m.seen);
        return;
    }
    for (int k = 0; k < c->n_levels; k++) {
        m.level = c->levels[k];
        contour_cells(&m);
        int any = 0;
        for (int e = 0; e < m.ne && !any; e++) any = m.link[e][0] >= 0;
        if (!any) continue;
        fprintf(f, "<path class='contour' fill='none' stroke='#aab4c0' stroke-width='0.8' d='");
        /* open curves from their ends first, then the closed loops */
        for (int e = 0; e < m.ne; e++)
            if (!m.seen[e] && m.link[e][0] >= 0 && m.link[e][1] < 0) contour_walk(f, &m, e);
        for (int e = 0; e < m.ne; e++)
            if (!m.seen[e] && m.link[e][0] >= 0) contour_walk(f, &m, e);
        fputs("'/>\n", f);
    }
    free(m.link);
    free(m.seen);
}

static void panel(FILE *f, const svg_panel *p, double ox) {
    double x0, x1, y0, y1;
    data_range(p, 0, &x0, &x1);
    data_range(p, 1, &y0, &y1);
    double pad = (y1 - y0) * 0.05;
    y0 -= pad, y1 += pad;
    const svg_contour *ct = p->contour;
    if (ct) x0 = ct->x0, x1 = ct->x1, y0 = ct->y0, y1 = ct->y1;
    double left = ox + MARGIN_L, right = ox + PANEL_W - MARGIN_R;
    double top = MARGIN_T, bottom = PANEL_H - MARGIN_B;
#define PX(v) (left + ((v) - x0) / (x1 - x0) * (right - left))
#define PY(v) (bottom - ((v) - y0) / (y1 - y0) * (bottom - top))
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='white' stroke='#888'/>\n",
            left, top, right - left, bottom - top);
    /* ticks and grid */
    double xs = nice_step(x1 - x0, 6);
    if (integer_x(p) && xs < 1) xs = 1; /* epochs, steps: no fractional ticks */
    for (double v = ceil(x0 / xs) * xs; v <= x1 + 1e-9 * xs; v += xs) {
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#eee'/>\n", PX(v), top,
                PX(v), bottom);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle'>%g</text>\n",
                PX(v), bottom + 15, fabs(v) < 1e-12 * xs ? 0 : v);
    }
    if (p->log_y) {
        /* ticks at 1, 2 and 5 times powers of ten (all of 1..9 over a short range) */
        int dense = y1 - y0 < 0.7, wide = y1 - y0 > 4.5;
        int every = y1 - y0 > 9 ? 2 : 1; /* decades between labels */
        for (double dec = floor(y0); dec <= ceil(y1); dec++)
            for (int m = 1; m <= 9; m++) {
                if (!dense && m != 1 && m != 2 && m != 5) continue;
                if (wide && (m != 1 || (long)floor(dec) % every != 0)) continue;
                double v = dec + log10(m);
                if (v < y0 - 1e-9 || v > y1 + 1e-9) continue;
                fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#eee'/>\n", left,
                        PY(v), right, PY(v));
                fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='end'>%.3g</text>\n",
                        left - 5, PY(v) + 4, pow(10, v));
            }
    } else {
        double ys = nice_step(y1 - y0, 6);
        for (double v = ceil(y0 / ys) * ys; v <= y1 + 1e-9 * ys; v += ys) {
            fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#eee'/>\n", left,
                    PY(v), right, PY(v));
            fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='end'>%g</text>\n",
                    left - 5, PY(v) + 4, fabs(v) < 1e-12 * ys ? 0 : v);
        }
    }
    fprintf(f, "<text x='%.1f' y='%d' font-size='14' text-anchor='middle'>", (left + right) / 2,
            MARGIN_T - 28);
    put_text(f, p->title);
    fprintf(f, "</text>\n<text x='%.1f' y='%d' font-size='12' text-anchor='middle'>",
            (left + right) / 2, PANEL_H - 10);
    put_text(f, p->xlabel);
    fprintf(f, "</text>\n<text x='%.1f' y='%.1f' font-size='12' text-anchor='middle' "
            "transform='rotate(-90 %.1f %.1f)'>", ox + 16, (top + bottom) / 2, ox + 16,
            (top + bottom) / 2);
    put_text(f, p->ylabel);
    fputs(p->log_y ? " (log)</text>\n" : "</text>\n", f);
    /* series (over the level curves, clipped to the box), then the legend on
     * a light box above them */
    static unsigned clip_ids;
    if (ct) {
        contour_paths(f, ct, left, right, top, bottom);
        fprintf(f, "<clipPath id='plotbox%u'><rect x='%.1f' y='%.1f' width='%.1f' height='%.1f'/>"
                "</clipPath>\n<g clip-path='url(#plotbox%u)'>\n", clip_ids, left, top,
                right - left, bottom - top, clip_ids);
        clip_ids++;
    }
    for (int s = 0; s < p->n_series; s++) {
        const svg_series *se = &p->series[s];
        const char *color = palette[s % 8];
        int open = 0;
        for (int i = 0; i < se->n; i++) {
            double y = se->y[i];
            int ok = isfinite(y) && isfinite(se->x[i]) && (!p->log_y || y > 0);
            if (!ok) {
                if (open) fputs("'/>\n", f);
                open = 0;
                continue;
            }
            if (p->log_y) y = log10(y);
            if (!open)
                fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.8'%s points='",
                        color, se->dashed ? " stroke-dasharray='6 4'" : "");
            fprintf(f, "%.2f,%.2f ", PX(se->x[i]), PY(y));
            open = 1;
        }
        if (open) fputs("'/>\n", f);
        if (se->n == 1 && isfinite(se->y[0]))
            fprintf(f, "<circle cx='%.2f' cy='%.2f' r='3' fill='%s'/>\n", PX(se->x[0]),
                    PY(p->log_y ? log10(se->y[0]) : se->y[0]), color);
        for (int i = 0; se->marker > 0 && i < se->n; i++) {
            double y = se->y[i];
            if (!isfinite(y) || !isfinite(se->x[i]) || (p->log_y && y <= 0)) continue;
            fprintf(f, "<circle cx='%.1f' cy='%.1f' r='%.1f' fill='%s'/>\n", PX(se->x[i]),
                    PY(p->log_y ? log10(y) : y), se->marker, color);
        }
    }
    if (ct) fputs("</g>\n", f);
    /* the legend box: 128 px wide, in the corner legend_at names */
    int show_legend = p->n_series && p->legend_at != SVG_LEGEND_NONE;
    double box_h = 16 * p->n_series + 4;
    int at_left = p->legend_at == SVG_LEGEND_BOTTOM_LEFT || p->legend_at == SVG_LEGEND_TOP_LEFT;
    double bx = at_left ? left + 6 : right - 134;
    double by = p->legend_at == SVG_LEGEND_BOTTOM_RIGHT || p->legend_at == SVG_LEGEND_BOTTOM_LEFT
                    ? bottom - 3 - box_h
                    : top + 3;
    if (show_legend)
        fprintf(f, "<rect x='%.1f' y='%.1f' width='128' height='%.0f' fill='white' "
                "fill-opacity='0.85' stroke='#ccc'/>\n", bx, by, box_h);
    for (int s = 0; s < p->n_series && show_legend; s++) {
        const svg_series *se = &p->series[s];
        const char *color = palette[s % 8];
        double ly = by + 11 + 16 * s;
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' stroke-width='2'%s/>\n",
                bx + 4, ly - 4, bx + 24, ly - 4, color,
                se->dashed ? " stroke-dasharray='6 4'" : "");
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11'>", bx + 29, ly);
        put_text(f, se->label);
        fputs("</text>\n", f);
    }
#undef PX
#undef PY
}

int svg_write(const char *path, const char *title, const svg_panel *panels, int n_panels) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int width = PANEL_W * (n_panels > 0 ? n_panels : 1);
    fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' "
            "width='%d' height='%d' viewBox='0 0 %d %d' font-family='sans-serif'>\n"
            "<rect width='100%%' height='100%%' fill='white'/>\n", width, PANEL_H, width, PANEL_H);
    fprintf(f, "<text x='%d' y='18' font-size='15' font-weight='bold' text-anchor='middle'>",
            width / 2);
    put_text(f, title);
    fputs("</text>\n", f);
    for (int i = 0; i < n_panels; i++) panel(f, &panels[i], (double)i * PANEL_W);
    fputs("</svg>\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return -1;
    return 0;
}

int svg_write_grid(const char *path, const char *title, const svg_panel *panels, int n_panels,
                   int cols) {
    if (cols < 1 || cols > n_panels) cols = n_panels > 0 ? n_panels : 1;
    int rows = n_panels > 0 ? (n_panels + cols - 1) / cols : 1;
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    enum { TITLE_H = 22 }; /* a band for the title above the panels' own titles */
    int width = PANEL_W * cols, height = TITLE_H + PANEL_H * rows;
    fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' "
            "width='%d' height='%d' viewBox='0 0 %d %d' font-family='sans-serif'>\n"
            "<rect width='100%%' height='100%%' fill='white'/>\n", width, height, width, height);
    fprintf(f, "<text x='%d' y='18' font-size='15' font-weight='bold' text-anchor='middle'>",
            width / 2);
    put_text(f, title);
    fputs("</text>\n", f);
    for (int i = 0; i < n_panels; i++) {
        fprintf(f, "<g transform='translate(0 %d)'>\n", TITLE_H + PANEL_H * (i / cols));
        panel(f, &panels[i], (double)(i % cols) * PANEL_W);
        fputs("</g>\n", f);
    }
    fputs("</svg>\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return -1;
    return 0;
}
