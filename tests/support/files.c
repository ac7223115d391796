#include "files.h"

#include <stdio.h>
#include <stdlib.h>

const char *test_source_path(const char *relative) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", NB_SOURCE_DIR, relative);
    return path;
}

unsigned char *test_read_file(const char *path, size_t *len) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? 2 * cap : 4096;
            unsigned char *bigger = realloc(buf, cap);
            if (!bigger) break;
            buf = bigger;
        }
        size_t r = fread(buf + *len, 1, cap - *len, f);
        if (r == 0) break;
        *len += r;
    }
    fclose(f);
    return buf;
}
