/* libFuzzer target for the IDX loader.  nb_idx_load reads files (through
 * zlib, which also handles gzip), so each input is written to one temporary
 * file, reused across runs. */
#define _POSIX_C_SOURCE 200809L
#include "nabla.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

static char path[64];
static int fd = -1;

static void cleanup(void) {
    if (fd >= 0) unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fd < 0) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof path, "%s/nabla_fuzz_idx_XXXXXX", dir);
        fd = mkstemp(path);
        REQUIRE(fd >= 0);
        atexit(cleanup);
    }
    REQUIRE(ftruncate(fd, 0) == 0);
    for (size_t done = 0; done < size;) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        REQUIRE(w > 0);
        done += (size_t)w;
    }
    nb_array a;
    memset(&a, 0, sizeof a);
    nb_status s = nb_idx_load(path, &a);
    if (s != NB_OK) {
        REQUIRE(a.data == NULL);
        REQUIRE(strstr(nb_last_error(), path) != NULL);
        return 0;
    }
    size_t numel = 1;
    REQUIRE(a.ndim >= 1 && a.ndim <= NB_MAX_DIMS);
    for (int d = 0; d < a.ndim; d++) {
        REQUIRE(a.dims[d] > 0);
        numel *= (size_t)a.dims[d];
    }
    REQUIRE(numel == a.numel && a.data);
    volatile double sum = 0;
    for (size_t k = 0; k < a.numel; k++) sum += nb_array_get(&a, k);
    (void)sum;
    nb_array_free(&a);
    return 0;
}
