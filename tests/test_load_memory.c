/* Loading a data set holds its bytes once: the peak resident memory while
 * Fashion-MNIST's training images (47 MB as bytes) are read, decompressed
 * and moved to 2 MiB-page memory rises by at most a quarter more than the
 * data set itself (a copy of the whole set, as a first version of the move
 * made, raises it by twice the set).  The peak is Linux's VmHWM, reset just
 * before the load through /proc/self/clear_refs.  Not under AddressSanitizer,
 * whose allocator keeps freed memory and adds shadow memory of its own. */
#include "nabla.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* A field of /proc/self/status in kB, or -1. */
static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    size_t len = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') kb = strtol(line + len + 1, NULL, 10);
    fclose(f);
    return kb;
}

static int reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

int main(void) {
#ifdef UNDER_ASAN
    printf("under AddressSanitizer: skipped\n");
    TEST_END();
#endif
    const char *dir = "/usr/share/datasets";
    FILE *probe = fopen("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb");
    if (!probe) {
        printf("dataset-fashion-mnist is not installed: skipped\n");
        TEST_END();
    }
    fclose(probe);
    if (!reset_peak() || status_kb("VmHWM") < 0) {
        printf("no /proc/self/clear_refs or VmHWM here: skipped\n");
        TEST_END();
    }
    long base = status_kb("VmRSS");
    nb_data train;
    nb_status s = nb_data_load("fashion-mnist", "train", dir, &train);
    CHECK_OK(s);
    if (s != NB_OK) TEST_END();
    long peak = status_kb("VmHWM");
    double set_mb = (double)train.n * (double)train.sample_size / (1 << 20);
    double rise_mb = (double)(peak - base) / 1024;
    printf("data set %.1f MB; peak resident memory rose by %.1f MB while loading it\n", set_mb,
           rise_mb);
    CHECKF(rise_mb <= 1.25 * set_mb + 4,
           "loading a %.1f MB data set raised the peak resident memory by %.1f MB", set_mb,
           rise_mb);
    CHECK(train.n == 60000 && train.sample_size == 784);
    nb_data_free(&train);
    TEST_END();
}
