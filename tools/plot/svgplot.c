/* Line charts as SVG (see svgplot.h). */
#include "svgplot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PANEL_W = 460, PANEL_H = 340, MARGIN_L = 64, MARGIN_R = 16, MARGIN_T = 56, MARGIN_B = 48 };

static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                "#9467bd", "#8c564b", "#e377c2", "#17becf"};

void svg_put_text(FILE *f, const char *s) {
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
            int log = axis_y ? p->log_y : p->log_x;
            if (!isfinite(v) || (log && v <= 0)) continue;
            if (log) v = log10(v);
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

/* The level curves of c, one <path class='contour'> per level; the grid's
 * extent is drawn at pixels left..right x top..bottom. */
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

/* ------------------------------------------------------------- panels */

static const char *series_color(const svg_series *se, int s) {
    return se->color ? se->color : palette[s % 8];
}

/* Dot radius of a series' points: its marker, or 2 for a scatter without one. */
static double dot_radius(const svg_series *se) {
    return se->marker > 0 ? se->marker : se->no_line ? 2 : 0;
}

/* The y-axis ticks: a "nice" linear step, or on a log axis the powers of ten
 * with 2 and 5 times them (all of 1..9 within less than 0.7 decades), only
 * the powers of ten beyond 3 decades, and beyond 8 decades only every few, so
 * that about 7 labels remain. */
static void y_ticks(FILE *f, const svg_panel *p, double y0, double y1, double left, double right,
                    double top, double bottom) {
#define PY(v) (bottom - ((v) - y0) / (y1 - y0) * (bottom - top))
    if (p->log_y) {
        int dense = y1 - y0 < 0.7, sparse = y1 - y0 > 3;
        double every = y1 - y0 > 8 ? ceil((y1 - y0) / 7) : 1;
        for (double dec = floor(y0); dec <= ceil(y1); dec++)
            for (int m = 1; m <= 9; m++) {
                if (!dense && m != 1 && m != 2 && m != 5) continue;
                if (sparse && (m != 1 || fmod(dec, every) != 0)) continue;
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
#undef PY
}

/* A panel's data area: axis ranges (log10 of the values on a log axis) and
 * the pixel box they are drawn in. */
typedef struct frame {
    double x0, x1, y0, y1, left, right, top, bottom;
} frame;

static double frame_x(const frame *fr, double v) {
    return fr->left + (v - fr->x0) / (fr->x1 - fr->x0) * (fr->right - fr->left);
}
static double frame_y(const frame *fr, double v) {
    return fr->bottom - (v - fr->y0) / (fr->y1 - fr->y0) * (fr->bottom - fr->top);
}

/* Besides the corners, a legend can be a band across the top of the plot,
 * its entries side by side in as many rows as they need. */
enum { LEGEND_BAND = SVG_LEGEND_NONE + 1 };

/* Width of a legend entry: its line or dot and its label (about 6 px a character). */
static double entry_width(const svg_series *se) {
    return 32 + 6.0 * (double)(se->label ? strlen(se->label) : 0);
}

/* Where entry s starts (its top-left corner) within a band of width w. */
static void band_entry(const svg_panel *p, int s, double w, double *ex, double *ey) {
    double x = 0, y = 0;
    for (int i = 0; i < s; i++) {
        x += entry_width(&p->series[i]) + 8;
        if (x + entry_width(&p->series[i + 1]) > w && x > 0) x = 0, y += 16;
    }
    *ex = x, *ey = y;
}

/* The legend box in a corner (SVG_LEGEND_TOP_RIGHT ..), as wide as the
 * longest label and at least 128 px, or the band across the top. */
static void legend_box(const svg_panel *p, int corner, const frame *fr, double *bx, double *by,
                       double *w, double *h) {
    if (corner == LEGEND_BAND) {
        double ex, ey;
        *w = fr->right - fr->left - 12;
        band_entry(p, p->n_series - 1, *w - 8, &ex, &ey);
        *h = ey + 20, *bx = fr->left + 6, *by = fr->top + 3;
        return;
    }
    *w = 128, *h = 16 * p->n_series + 4;
    for (int s = 0; s < p->n_series; s++)
        if (entry_width(&p->series[s]) > *w) *w = entry_width(&p->series[s]);
    int at_left = corner == SVG_LEGEND_TOP_LEFT || corner == SVG_LEGEND_BOTTOM_LEFT;
    int at_bottom = corner == SVG_LEGEND_BOTTOM_RIGHT || corner == SVG_LEGEND_BOTTOM_LEFT;
    *bx = at_left ? fr->left + 6 : fr->right - *w - 6;
    *by = at_bottom ? fr->bottom - 3 - *h : fr->top + 3;
}

/* How much of the series the box (x, y, w, h), grown by 3 px, would hide:
 * the dots in it, and the points of every line sampled every 2 px. */
static int covered(const svg_panel *p, const frame *fr, double x, double y, double w, double h) {
    int count = 0;
    x -= 3, y -= 3, w += 6, h += 6;
    for (int s = 0; s < p->n_series; s++) {
        const svg_series *se = &p->series[s];
        double qx = 0, qy = 0;
        int have_prev = 0;
        for (int i = 0; i < se->n; i++) {
            double vx = se->x[i], vy = se->y[i];
            int ok = isfinite(vx) && isfinite(vy) && (!p->log_x || vx > 0) && (!p->log_y || vy > 0);
            if (!ok) {
                have_prev = 0;
                continue;
            }
            double px = frame_x(fr, p->log_x ? log10(vx) : vx);
            double py = frame_y(fr, p->log_y ? log10(vy) : vy);
            if (!have_prev || se->no_line) qx = px, qy = py; /* the point alone */
            int steps = 1 + (int)(hypot(px - qx, py - qy) / 2);
            if (steps > 10000) steps = 10000;
            for (int k = 1; k <= steps; k++) { /* along the segment from the last point */
                double t = (double)k / steps, sx = qx + t * (px - qx), sy = qy + t * (py - qy);
                count += sx >= x && sx <= x + w && sy >= y && sy <= y + h;
            }
            qx = px, qy = py, have_prev = 1;
        }
    }
    return count;
}

/* The first place, of the four corners and the band across the top, where
 * the legend hides no point; when there is none and the y axis may grow
 * (free_y), fr->y1 grows so that the band sits above the data; else the
 * place that hides the fewest. */
static int legend_auto(const svg_panel *p, frame *fr, int free_y) {
    static const int places[5] = {SVG_LEGEND_TOP_RIGHT, SVG_LEGEND_TOP_LEFT,
                                  SVG_LEGEND_BOTTOM_RIGHT, SVG_LEGEND_BOTTOM_LEFT, LEGEND_BAND};
    int best = places[0], least = -1;
    double bx, by, w, h;
    for (int c = 0; c < 5 && least != 0; c++) {
        legend_box(p, places[c], fr, &bx, &by, &w, &h);
        int n = covered(p, fr, bx, by, w, h);
        if (least < 0 || n < least) least = n, best = places[c];
    }
    legend_box(p, LEGEND_BAND, fr, &bx, &by, &w, &h);
    double need = h + 9, height = fr->bottom - fr->top;
    if (least > 0 && free_y && need < 0.5 * height) {
        fr->y1 = fr->y0 + (fr->y1 - fr->y0) * height / (height - need);
        return LEGEND_BAND;
    }
    return best;
}

/* The legend box in the corner given.  Each entry shows what the series
 * draws: a line, a dot, or a line with a dot. */
static void legend(FILE *f, const svg_panel *p, int corner, const frame *fr) {
    if (!p->n_series || corner == SVG_LEGEND_NONE) return;
    double bx, by, w, h;
    legend_box(p, corner, fr, &bx, &by, &w, &h);
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.0f' height='%.0f' fill='white' "
            "fill-opacity='0.85' stroke='#ccc'/>\n", bx, by, w, h);
    for (int s = 0; s < p->n_series; s++) {
        const svg_series *se = &p->series[s];
        const char *color = series_color(se, s);
        double ex = bx, ey = by + 16 * s;
        if (corner == LEGEND_BAND) {
            band_entry(p, s, w - 8, &ex, &ey);
            ex += bx, ey += by;
        }
        double ly = ey + 11, r = dot_radius(se);
        if (!se->no_line)
            fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' "
                    "stroke-width='2'%s/>\n", ex + 4, ly - 4, ex + 24, ly - 4, color,
                    se->dashed ? " stroke-dasharray='6 4'" : "");
        if (r > 0)
            fprintf(f, "<circle cx='%.1f' cy='%.1f' r='%.1f' fill='%s'/>\n", ex + 14, ly - 4,
                    r < 3 ? r : 3, color);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11'>", ex + 29, ly);
        svg_put_text(f, se->label);
        fputs("</text>\n", f);
    }
}

/* One panel at horizontal offset ox; id (the panel's index in the file) names
 * its clipping rectangle. */
static void panel(FILE *f, const svg_panel *p, double ox, int id) {
    double x0, x1, y0, y1;
    data_range(p, 0, &x0, &x1);
    data_range(p, 1, &y0, &y1);
    double pad = (y1 - y0) * 0.05;
    y0 -= pad, y1 += pad;
    const svg_contour *ct = p->contour;
    if (ct) x0 = ct->x0, x1 = ct->x1, y0 = ct->y0, y1 = ct->y1;
    int fixed_y = p->y_min < p->y_max && (!p->log_y || p->y_min > 0);
    if (fixed_y) {
        y0 = p->log_y ? log10(p->y_min) : p->y_min;
        y1 = p->log_y ? log10(p->y_max) : p->y_max;
    }
    /* a fixed range may cut series: those are clipped to the box */
    int clip = ct || fixed_y;
    double left = ox + MARGIN_L, right = ox + PANEL_W - MARGIN_R;
    double top = MARGIN_T, bottom = PANEL_H - MARGIN_B;
    frame fr = {x0, x1, y0, y1, left, right, top, bottom};
    int corner = p->legend_at;
    if (corner == SVG_LEGEND_AUTO && p->n_series) corner = legend_auto(p, &fr, !clip);
    y1 = fr.y1;
#define PX(v) (left + ((v) - x0) / (x1 - x0) * (right - left))
#define PY(v) (bottom - ((v) - y0) / (y1 - y0) * (bottom - top))
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='white' stroke='#888'/>\n",
            left, top, right - left, bottom - top);
    /* ticks and grid; a log axis ticks whole decades */
    double xs = p->log_x ? ceil((x1 - x0) / 8) : nice_step(x1 - x0, 6);
    if ((p->log_x || integer_x(p)) && xs < 1) xs = 1; /* epochs, steps: no fractional ticks */
    for (double v = ceil(x0 / xs) * xs; v <= x1 + 1e-9 * xs; v += xs) {
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#eee'/>\n", PX(v), top,
                PX(v), bottom);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle'>%g</text>\n",
                PX(v), bottom + 15, p->log_x ? pow(10, v) : fabs(v) < 1e-12 * xs ? 0 : v);
    }
    y_ticks(f, p, y0, y1, left, right, top, bottom);
    fprintf(f, "<text x='%.1f' y='%d' font-size='14' text-anchor='middle'>", (left + right) / 2,
            MARGIN_T - 28);
    svg_put_text(f, p->title);
    fprintf(f, "</text>\n<text x='%.1f' y='%d' font-size='12' text-anchor='middle'>",
            (left + right) / 2, PANEL_H - 10);
    svg_put_text(f, p->xlabel);
    fprintf(f, "%s</text>", p->log_x ? " (log)" : "");
    fprintf(f, "\n<text x='%.1f' y='%.1f' font-size='12' text-anchor='middle' "
            "transform='rotate(-90 %.1f %.1f)'>", ox + 16, (top + bottom) / 2, ox + 16,
            (top + bottom) / 2);
    svg_put_text(f, p->ylabel);
    fputs(p->log_y ? " (log)</text>\n" : "</text>\n", f);
    /* the level curves, then the series over them, then the legend on a light
     * box above everything */
    if (clip)
        fprintf(f, "<clipPath id='plotbox%d'><rect x='%.1f' y='%.1f' width='%.1f' height='%.1f'/>"
                "</clipPath>\n<g clip-path='url(#plotbox%d)'>\n", id, left, top, right - left,
                bottom - top, id);
    if (ct) contour_paths(f, ct, PX(ct->x0), PX(ct->x1), PY(ct->y1), PY(ct->y0));
    for (int s = 0; s < p->n_series; s++) {
        const svg_series *se = &p->series[s];
        const char *color = series_color(se, s);
        int open = 0;
        for (int i = 0; i < se->n && !se->no_line; i++) {
            double y = se->y[i], x = se->x[i];
            int ok = isfinite(y) && isfinite(x) && (!p->log_y || y > 0) && (!p->log_x || x > 0);
            if (!ok) {
                if (open) fputs("'/>\n", f);
                open = 0;
                continue;
            }
            if (p->log_y) y = log10(y);
            if (!open)
                fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.8'%s points='",
                        color, se->dashed ? " stroke-dasharray='6 4'" : "");
            fprintf(f, "%.2f,%.2f ", PX(p->log_x ? log10(x) : x), PY(y));
            open = 1;
        }
        if (open) fputs("'/>\n", f);
        /* dots: a lone point would not show as a line, so it gets one too;
         * a scatter's dots are translucent where they pile up */
        double r = dot_radius(se);
        if (r <= 0 && se->n == 1) r = 3;
        for (int i = 0; r > 0 && i < se->n; i++) {
            double y = se->y[i], x = se->x[i];
            if (!isfinite(y) || !isfinite(x) || (p->log_y && y <= 0) || (p->log_x && x <= 0))
                continue;
            fprintf(f, "<circle cx='%.1f' cy='%.1f' r='%.1f' fill='%s'%s/>\n",
                    PX(p->log_x ? log10(x) : x),
                    PY(p->log_y ? log10(y) : y), r, color,
                    se->no_line ? " fill-opacity='0.6'" : "");
        }
    }
    if (clip) fputs("</g>\n", f);
    fr.y1 = y1;
    legend(f, p, corner, &fr);
#undef PX
#undef PY
}

int svg_write_grid(const char *path, const char *title, const svg_panel *panels, int n_panels,
                   int columns) {
    int cols = columns >= 1 && columns <= n_panels ? columns : n_panels > 0 ? n_panels : 1;
    int rows = n_panels > 0 ? (n_panels + cols - 1) / cols : 1;
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    /* a band for the title, so that it stays clear of the panels' own titles */
    enum { TITLE_H = 22 };
    int width = PANEL_W * cols, height = TITLE_H + PANEL_H * rows;
    fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' "
            "width='%d' height='%d' viewBox='0 0 %d %d' font-family='sans-serif'>\n"
            "<rect width='100%%' height='100%%' fill='white'/>\n", width, height, width, height);
    fprintf(f, "<text x='%d' y='18' font-size='15' font-weight='bold' text-anchor='middle'>",
            width / 2);
    svg_put_text(f, title);
    fputs("</text>\n", f);
    /* each panel drawn as in one row, shifted down to its row */
    for (int i = 0; i < n_panels; i++) {
        fprintf(f, "<g transform='translate(0 %d)'>\n", TITLE_H + PANEL_H * (i / cols));
        panel(f, &panels[i], (double)(i % cols) * PANEL_W, i);
        fputs("</g>\n", f);
    }
    fputs("</svg>\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return -1;
    return 0;
}

int svg_write(const char *path, const char *title, const svg_panel *panels, int n_panels) {
    return svg_write_grid(path, title, panels, n_panels, n_panels);
}
