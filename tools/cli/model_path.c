/* A model named on the command line: a file, or the name of a shipped model
 * ("fashion_mlp") looked up where the models are installed. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef NB_MODEL_DIR
#define NB_MODEL_DIR "/usr/local/share/nabla/models"
#endif

static int is_file(const char *path) { return access(path, R_OK) == 0; }

/* dir/name or dir/name.nn into buf, if one is a file. */
static int find_in(const char *dir, const char *name, char *buf, size_t size) {
    if (!dir || !dir[0]) return 0;
    static const char *const forms[] = {"%s/%s", "%s/%s.nn"};
    for (int k = 0; k < 2; k++) {
        int w = snprintf(buf, size, forms[k], dir, name);
        if (w > 0 && (size_t)w < size && is_file(buf)) return 1;
    }
    return 0;
}

const char *cli_model_path(const char *arg, char *buf, size_t size) {
    if (is_file(arg) || strchr(arg, '/')) return arg;
    /* next to the program: PREFIX/bin -> PREFIX/share/nabla/models once installed
     * anywhere, build/ -> models/ in a source tree */
    char exe[4096], dir[4096 + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = n > 0 ? (exe[n] = '\0', strrchr(exe, '/')) : NULL;
    if (slash) *slash = '\0';
    if (find_in(getenv("NABLA_MODEL_DIR"), arg, buf, size)) return buf;
    if (slash) {
        snprintf(dir, sizeof dir, "%s/../share/nabla/models", exe);
        if (find_in(dir, arg, buf, size)) return buf;
        snprintf(dir, sizeof dir, "%s/../models", exe);
        if (find_in(dir, arg, buf, size)) return buf;
    }
    if (find_in(NB_MODEL_DIR, arg, buf, size)) return buf;
    return arg; /* the loader says it cannot be opened */
}
