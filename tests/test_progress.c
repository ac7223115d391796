/* nabla train's progress bar: the line fits the terminal's width whatever it
 * is (one column to spare), the bar narrows before parts are left out, and
 * the least important parts go first. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>

#include "progress.h"
#include "support/test.h"

static const progress_line full = {12, 100, 345, 469, 12345.0, 0.123456, 3725.0, 0.5, 0.875};

static void test_fits_every_width(void) {
    char line[600];
    for (int w = 1; w <= 300; w++) {
        size_t n = progress_format(line, sizeof line, w, &full);
        CHECKF(n == strlen(line) && (int)n <= (w > 1 ? w - 1 : 1), "width %d: %zu '%s'", w, n,
               line);
        /* the epoch and its loss survive as long as they fit */
        if (w > 40)
            CHECKF(strncmp(line, "epoch 12/100", 12) == 0 && strstr(line, "loss 0.1235"),
                   "width %d: '%s'", w, line);
    }
}

static void test_parts(void) {
    char line[600];
    progress_format(line, sizeof line, 200, &full);
    CHECKF(strcmp(line, "epoch 12/100 [######################........] 345/469  loss 0.1235  "
                  "val_loss 0.5000  val_acc 87.50%  12345 samples/s  ETA 1:02:05") == 0,
           "'%s'", line);
    /* 60 columns: the bar narrows first, then samples/s and the validation
     * metrics go, the bar keeping at least 10 cells */
    progress_format(line, sizeof line, 60, &full);
    CHECKF(strstr(line, "samples/s") == NULL && strstr(line, "val_loss") == NULL &&
           strstr(line, " [##") && strstr(line, "ETA 1:02:05"), "'%s'", line);
    progress_format(line, sizeof line, 100, &full);
    CHECKF(strstr(line, "samples/s") == NULL && strstr(line, "val_acc 87.50%"), "'%s'", line);
    /* narrower: no bar, then no ETA, then no batch count */
    progress_format(line, sizeof line, 40, &full);
    CHECKF(strchr(line, '[') == NULL && strstr(line, "345/469"), "'%s'", line);
    progress_format(line, sizeof line, 26, &full);
    CHECKF(strcmp(line, "epoch 12/100  loss 0.1235") == 0, "'%s'", line);
    /* and narrower still: cut, never wrapped */
    progress_format(line, sizeof line, 25, &full);
    CHECKF(strcmp(line, "epoch 12/100  loss 0.123") == 0, "'%s'", line);
    /* no validation: nothing shown for it */
    progress_line v = full;
    v.val_loss = v.val_acc = -1;
    progress_format(line, sizeof line, 200, &v);
    CHECKF(strstr(line, "val_") == NULL, "'%s'", line);
}

static void test_columns(void) {
    /* not a terminal: $COLUMNS, else 80 */
    int fd = fileno(tmpfile());
    setenv("COLUMNS", "57", 1);
    CHECK(progress_columns(fd) == 57);
    setenv("COLUMNS", "junk", 1);
    CHECK(progress_columns(fd) == 80);
    unsetenv("COLUMNS");
    CHECK(progress_columns(fd) == 80);
}

int main(void) {
    test_fits_every_width();
    test_parts();
    test_columns();
    TEST_END();
}
