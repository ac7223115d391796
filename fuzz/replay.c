/* Runs a fuzz target over files and directories of inputs without libFuzzer:
 * the default test suite replays every committed corpus through every target
 * this way (under the sanitizers in `make test-asan`), so the targets stay
 * buildable and each corpus file keeps passing their checks. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return 0;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, r;
    do {
        if (len == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *bigger = realloc(buf, cap);
            if (!bigger) break;
            buf = bigger;
        }
        r = fread(buf + len, 1, cap - len, f);
        len += r;
    } while (r > 0);
    fclose(f);
    LLVMFuzzerTestOneInput(buf ? buf : (const uint8_t *)"", len);
    free(buf);
    return 1;
}

int main(int argc, char **argv) {
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "cannot read %s\n", argv[i]);
            printf("0 passed, 1 failed\n");
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            files += replay_file(argv[i]);
            continue;
        }
        DIR *d = opendir(argv[i]);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) files += replay_file(path);
        }
        if (d) closedir(d);
    }
    /* a broken check traps (abort) before this line */
    printf("%d passed, 0 failed\n", files);
    return files ? 0 : 1;
}
