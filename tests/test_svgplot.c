/* svgplot's legends hide no data: the SVG written is read back, and every
 * point of every drawn line (sampled each pixel) and every dot must lie
 * outside the legend's box.  Also the log x axis: decade ticks, "(log)". */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "files.h"
#include "svgplot.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static char *read_svg(void) {
    size_t len = 0;
    unsigned char *raw = test_read_file(path, &len);
    char *text = raw ? malloc(len + 1) : NULL;
    if (text) memcpy(text, raw, len), text[len] = '\0';
    free(raw);
    return text;
}

static int inside(double x, double y, const double box[4]) {
    return x >= box[0] && x <= box[0] + box[2] && y >= box[1] && y <= box[1] + box[3];
}

/* How many drawn points of the data fall in the legend box (the rect with
 * fill-opacity 0.85; the lines and dots before it are the data). */
static int hidden_points(const char *svg) {
    const char *leg = strstr(svg, "fill-opacity='0.85'");
    if (!leg) return -1;
    const char *r = leg;
    while (r > svg && strncmp(r, "<rect", 5) != 0) r--;
    double box[4];
    if (sscanf(r, "<rect x='%lf' y='%lf' width='%lf' height='%lf'", &box[0], &box[1], &box[2],
               &box[3]) != 4)
        return -1;
    int hidden = 0;
    for (const char *p = strstr(svg, "<polyline"); p && p < r; p = strstr(p + 1, "<polyline")) {
        const char *q = strstr(p, "points='") + 8;
        double px = 0, py = 0, x, y;
        int n = 0, used;
        while (sscanf(q, "%lf,%lf%n", &x, &y, &used) == 2) {
            int steps = n ? 1 + (int)hypot(x - px, y - py) : 1;
            for (int k = 1; k <= steps; k++) {
                double t = n ? (double)k / steps : 1;
                hidden += inside(px + t * (x - px), py + t * (y - py), box);
            }
            px = x, py = y, n++, q += used;
        }
    }
    for (const char *p = strstr(svg, "<circle"); p && p < r; p = strstr(p + 1, "<circle")) {
        double x, y;
        if (sscanf(p, "<circle cx='%lf' cy='%lf'", &x, &y) == 2) hidden += inside(x, y, box);
    }
    return hidden;
}

static void check_clear(const char *what, const svg_panel *p) {
    CHECK(svg_write(path, what, p, 1) == 0);
    char *svg = read_svg();
    int hidden = svg ? hidden_points(svg) : -1;
    CHECKF(hidden == 0, "%s: the legend hides %d points of the data", what, hidden);
    free(svg);
}

enum { N = 200 };

int main(void) {
    snprintf(path, sizeof path, "/tmp/nb_svgplot_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return perror("mkstemp"), 1;
    close(fd);
    static double x[N], up[N], down[N], wave[N], flat[N];
    for (int i = 0; i < N; i++) {
        x[i] = i;
        up[i] = i;              /* through the top-right and bottom-left corners */
        down[i] = N - i;        /* through the other two                         */
        wave[i] = sin(i * 0.6); /* fills the whole box                           */
        flat[i] = 0.5;
    }
    svg_series rising[2] = {{.label = "rising", .x = x, .y = up, .n = N},
                            {.label = "same", .x = x, .y = up, .n = N, .dashed = 1}};
    check_clear("a line through the top-right corner",
                &(svg_panel){.title = "t", .series = rising, .n_series = 2});
    svg_series both[2] = {{.label = "rising", .x = x, .y = up, .n = N},
                          {.label = "falling", .x = x, .y = down, .n = N}};
    check_clear("lines through all four corners",
                &(svg_panel){.title = "t", .series = both, .n_series = 2});
    svg_series filled[2] = {{.label = "wave", .x = x, .y = wave, .n = N},
                            {.label = "level", .x = x, .y = flat, .n = N}};
    check_clear("a wave filling the box",
                &(svg_panel){.title = "t", .series = filled, .n_series = 2});
    svg_series scatter[1] = {{.label = "points", .x = x, .y = up, .n = N, .no_line = 1}};
    check_clear("dots through the corners",
                &(svg_panel){.title = "t", .series = scatter, .n_series = 1});
    check_clear("lines through all four corners, log y",
                &(svg_panel){.title = "t", .series = both, .n_series = 2, .log_y = 1});

    /* an explicit corner is kept, even over data */
    CHECK(svg_write(path, "t", &(svg_panel){.title = "t", .series = rising, .n_series = 2,
                                           .legend_at = SVG_LEGEND_TOP_RIGHT}, 1) == 0);
    char *svg = read_svg();
    CHECK(svg && hidden_points(svg) > 0);
    free(svg);

    /* log x: a tick per decade from 1e-07 to 10, the axis named as log */
    static double rate[N];
    for (int i = 0; i < N; i++) rate[i] = 1e-7 * pow(1e8, (double)i / (N - 1));
    svg_series lr[1] = {{.label = "loss", .x = rate, .y = down, .n = N}};
    CHECK(svg_write(path, "t", &(svg_panel){.title = "t", .xlabel = "rate", .series = lr,
                                           .n_series = 1, .log_x = 1}, 1) == 0);
    svg = read_svg();
    CHECK(svg && strstr(svg, ">rate (log)</text>"));
    CHECK(svg && strstr(svg, "text-anchor='middle'>1e-07</text>"));
    CHECK(svg && strstr(svg, "text-anchor='middle'>0.001</text>"));
    CHECK(svg && strstr(svg, "text-anchor='middle'>10</text>"));
    free(svg);
    remove(path);
    TEST_END();
}
