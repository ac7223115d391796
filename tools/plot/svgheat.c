/* Heat maps as SVG (see svgheat.h). */
#include "svgheat.h"
#include "svgplot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { TITLE_H = 34, GAP = 8, AXIS_TITLE = 20, FONT_W = 7, MAX_LABEL = 200 };

static void put_label(FILE *f, const char *const *labels, int i) {
    if (labels && labels[i]) svg_put_text(f, labels[i]);
    else fprintf(f, "%d", i);
}

/* Width in pixels of the longest label (an estimate: FONT_W per byte). */
static int label_width(const char *const *labels, int n) {
    size_t longest = 1;
    for (int i = 0; i < n; i++) {
        size_t len = labels && labels[i] ? strlen(labels[i]) : (size_t)snprintf(NULL, 0, "%d", i);
        if (len > longest) longest = len;
    }
    int w = (int)longest * FONT_W;
    return w < MAX_LABEL ? w : MAX_LABEL;
}

/* White to dark blue (#08306b); grey for NaN. */
static void cell_color(double t, char *buf, size_t size) {
    if (t != t) {
        snprintf(buf, size, "#cccccc");
        return;
    }
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    snprintf(buf, size, "#%02x%02x%02x", (int)lround(255 - t * (255 - 8)),
             (int)lround(255 - t * (255 - 48)), (int)lround(255 - t * (255 - 107)));
}

static void cells(FILE *f, const svg_heatmap *h, int x0, int y0, int cell) {
    for (int r = 0; r < h->rows; r++)
        for (int c = 0; c < h->cols; c++) {
            size_t i = (size_t)r * (size_t)h->cols + (size_t)c;
            double t = h->shade[i];
            char color[16];
            cell_color(t, color, sizeof color);
            int x = x0 + c * cell, y = y0 + r * cell;
            fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='%s' stroke='#ffffff'/>\n",
                    x, y, cell, cell, color);
            char num[32];
            int len = snprintf(num, sizeof num, "%g", h->numbers[i]);
            int font = cell >= 36 ? 12 : 10;
            if (len * font * 6 / 10 + 4 > cell || font + 4 > cell) continue; /* would not fit */
            fprintf(f, "<text x='%d' y='%d' font-size='%d' text-anchor='middle' fill='%s'>%s"
                    "</text>\n", x + cell / 2, y + cell / 2 + font * 35 / 100, font,
                    t > 0.5 ? "#ffffff" : "#000000", num);
        }
}

static void labels(FILE *f, const svg_heatmap *h, int x0, int y0, int cell) {
    int font = cell >= 14 ? 11 : 8;
    for (int r = 0; r < h->rows; r++) {
        fprintf(f, "<text x='%d' y='%d' font-size='%d' text-anchor='end'>", x0 - 4,
                y0 + r * cell + cell / 2 + font * 35 / 100, font);
        put_label(f, h->row_labels, r);
        fputs("</text>\n", f);
    }
    int yb = y0 + h->rows * cell + 6; /* column labels run down and left, at 45 degrees */
    for (int c = 0; c < h->cols; c++) {
        int x = x0 + c * cell + cell / 2 + font * 35 / 100;
        fprintf(f, "<text x='%d' y='%d' font-size='%d' text-anchor='end' "
                "transform='rotate(-45 %d %d)'>", x, yb, font, x, yb);
        put_label(f, h->col_labels, c);
        fputs("</text>\n", f);
    }
}

int svg_write_heatmap(const char *path, const svg_heatmap *h) {
    if (!h || h->rows < 1 || h->cols < 1 || !h->numbers || !h->shade) return errno = EINVAL, -1;
    int n = h->rows > h->cols ? h->rows : h->cols;
    int cell = 560 / n < 8 ? 8 : 560 / n > 64 ? 64 : 560 / n;
    int left = AXIS_TITLE + GAP + label_width(h->row_labels, h->rows) + GAP;
    int below = label_width(h->col_labels, h->cols) * 71 / 100 + 3 * GAP + AXIS_TITLE;
    int width = left + h->cols * cell + 3 * GAP, grid_h = h->rows * cell;
    int height = TITLE_H + grid_h + below + (h->note ? AXIS_TITLE : 0);
    /* room for the title (bold, about 9 px a byte) and the note */
    int title_w = (h->title ? (int)strlen(h->title) * 9 : 0) + 2 * GAP;
    int note_w = (h->note ? (int)strlen(h->note) * 6 : 0) + 2 * GAP;
    if (width < title_w) width = title_w;
    if (width < note_w) width = note_w;
    left += (width - (left + h->cols * cell + 3 * GAP)) / 2; /* the grid in the middle */
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' "
            "width='%d' height='%d' viewBox='0 0 %d %d' font-family='sans-serif'>\n"
            "<rect width='100%%' height='100%%' fill='white'/>\n<text x='%d' y='22' "
            "font-size='15' font-weight='bold' text-anchor='middle'>", width, height, width,
            height, width / 2);
    svg_put_text(f, h->title);
    fputs("</text>\n", f);
    cells(f, h, left, TITLE_H, cell);
    labels(f, h, left, TITLE_H, cell);
    int mid_y = TITLE_H + grid_h / 2, mid_x = left + h->cols * cell / 2;
    fprintf(f, "<text x='14' y='%d' font-size='12' text-anchor='middle' "
            "transform='rotate(-90 14 %d)'>", mid_y, mid_y);
    svg_put_text(f, h->ylabel);
    fprintf(f, "</text>\n<text x='%d' y='%d' font-size='12' text-anchor='middle'>", mid_x,
            TITLE_H + grid_h + below - GAP);
    svg_put_text(f, h->xlabel);
    fputs("</text>\n", f);
    if (h->note) {
        fprintf(f, "<text x='%d' y='%d' font-size='11' text-anchor='middle' fill='#555555'>",
                width / 2, height - GAP);
        svg_put_text(f, h->note);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return -1;
    return 0;
}
