#include "svgplot.h"

#include <math.h>
#include <stdio.h>
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

static void panel(FILE *f, const svg_panel *p, double ox) {
    double x0, x1, y0, y1;
    data_range(p, 0, &x0, &x1);
    data_range(p, 1, &y0, &y1);
    int fixed = p->y_min < p->y_max && (!p->log_y || p->y_min > 0);
    if (fixed) {
        y0 = p->log_y ? log10(p->y_min) : p->y_min;
        y1 = p->log_y ? log10(p->y_max) : p->y_max;
    } else {
        double pad = (y1 - y0) * 0.05;
        y0 -= pad, y1 += pad;
    }
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
        /* ticks at 1, 2 and 5 times powers of ten (all of 1..9 over a short range;
         * over many decades only every few powers of ten) */
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
    /* series, then the legend on a light box above them */
    static int clip_id; /* unique ids of the clipping rectangles in a file */
    if (fixed) {
        clip_id++;
        fprintf(f, "<clipPath id='clip%d'><rect x='%.1f' y='%.1f' width='%.1f' height='%.1f'/>"
                "</clipPath>\n<g clip-path='url(#clip%d)'>\n", clip_id, left, top, right - left,
                bottom - top, clip_id);
    }
    for (int s = 0; s < p->n_series; s++) {
        const svg_series *se = &p->series[s];
        const char *color = se->color ? se->color : palette[s % 8];
        int open = 0;
        for (int i = 0; i < se->n; i++) {
            double y = se->y[i];
            int ok = !se->marker && isfinite(y) && isfinite(se->x[i]) && (!p->log_y || y > 0);
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
        for (int i = 0; i < se->n && se->marker; i++)
            if (isfinite(se->y[i]) && isfinite(se->x[i]) && (!p->log_y || se->y[i] > 0))
                fprintf(f, "<circle cx='%.1f' cy='%.1f' r='%d' fill='%s' fill-opacity='0.6'/>\n",
                        PX(se->x[i]), PY(p->log_y ? log10(se->y[i]) : se->y[i]),
                        se->marker > 1 ? se->marker : 2, color);
        if (se->n == 1 && isfinite(se->y[0]) && !se->marker)
            fprintf(f, "<circle cx='%.2f' cy='%.2f' r='3' fill='%s'/>\n", PX(se->x[0]),
                    PY(p->log_y ? log10(se->y[0]) : se->y[0]), color);
    }
    if (fixed) fputs("</g>\n", f);
    /* legend box as wide as the longest label (about 6 px a character) */
    double lw = 128;
    for (int s = 0; s < p->n_series; s++) {
        double w = p->series[s].label ? 32 + 6.0 * (double)strlen(p->series[s].label) : 0;
        if (w > lw) lw = w;
    }
    int lh = 16 * p->n_series + 4;
    double lx = p->legend == 1 || p->legend == 3 ? left + 6 : right - lw - 6;
    double ly0 = p->legend == 2 || p->legend == 3 ? bottom - 3 - lh : top + 3;
    if (p->n_series && p->legend >= 0)
        fprintf(f, "<rect x='%.1f' y='%.1f' width='%.0f' height='%d' fill='white' "
                "fill-opacity='0.85' stroke='#ccc'/>\n", lx, ly0, lw, lh);
    for (int s = 0; s < p->n_series && p->legend >= 0; s++) {
        const svg_series *se = &p->series[s];
        const char *color = se->color ? se->color : palette[s % 8];
        double ly = ly0 + 11 + 16 * s;
        if (se->marker)
            fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n", lx + 14, ly - 4,
                    color);
        else
            fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' "
                    "stroke-width='2'%s/>\n", lx + 4, ly - 4, lx + 24, ly - 4, color,
                    se->dashed ? " stroke-dasharray='6 4'" : "");
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11'>", lx + 29, ly);
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
                   int columns) {
    if (columns < 1) columns = 1;
    int cols = n_panels < columns ? (n_panels > 0 ? n_panels : 1) : columns;
    int rows = n_panels > 0 ? (n_panels + cols - 1) / cols : 1;
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    enum { TITLE_H = 14 }; /* room for the title above the panels' own titles */
    int width = PANEL_W * cols, height = PANEL_H * rows + TITLE_H;
    fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' "
            "width='%d' height='%d' viewBox='0 0 %d %d' font-family='sans-serif'>\n"
            "<rect width='100%%' height='100%%' fill='white'/>\n", width, height, width, height);
    fprintf(f, "<text x='%d' y='18' font-size='15' font-weight='bold' text-anchor='middle'>",
            width / 2);
    put_text(f, title);
    fputs("</text>\n", f);
    /* each row drawn as the one-row layout, shifted down */
    for (int i = 0; i < n_panels; i++) {
        fprintf(f, "<g transform='translate(0,%d)'>\n", TITLE_H + PANEL_H * (i / cols));
        panel(f, &panels[i], (double)(i % cols) * PANEL_W);
        fputs("</g>\n", f);
    }
    fputs("</svg>\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return -1;
    return 0;
}
