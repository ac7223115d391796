/* nabla gradcheck: runs nabla-gradcheck, installed next to nabla, which is
 * the same code built on the double-precision library. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cmd_gradcheck(int argc, char **argv) {
    (void)argc;
    char self[PATH_MAX], helper[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return cli_fail("gradcheck", "cannot locate the nabla program (%s)", strerror(errno));
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    snprintf(helper, sizeof helper, "%s/nabla-gradcheck", self);
    argv[0] = helper;
    execv(helper, argv);
    return cli_fail("gradcheck", "cannot run %s (%s)", helper, strerror(errno));
}
