/* TensorBoard event files: the TFRecord checksum against known vectors, and
 * the writer against an event file TensorBoard's own Python code wrote
 * (tests/reference/tfevents.py), byte for byte; then file names, directories
 * and bad arguments. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "files.h"
#include "nabla.h"
#include "formats/tfrecord.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

static void test_crc32c(void) {
    /* the CRC-32C check value (RFC 3720, B.4) */
    CHECK(nb__crc32c("123456789", 9) == 0xE3069283u);
    CHECK(nb__crc32c("", 0) == 0);
    /* TensorBoard's tf_record.rs: the header of a record of 24 bytes */
    static const unsigned char want_head[12] = {0x18, 0, 0, 0, 0, 0, 0, 0, 0xa3, 0x7f, 0x4b, 0x22};
    unsigned char head[NB_TFRECORD_HEAD];
    nb__tfrecord_head(24, head);
    CHECK(memcmp(head, want_head, sizeof head) == 0);
    /* ... and the data CRC of the version event */
    static const unsigned char payload[] = {0x09, 0x00, 0x00, 0x80, 0x38, 0x99, 0xd6, 0xd7, 0x41,
                                            0x1a, 0x0d, 'b', 'r', 'a', 'i', 'n', '.', 'E', 'v',
                                            'e', 'n', 't', ':', '2'};
    static const unsigned char want_tail[4] = {0x12, 0x4b, 0x36, 0xab};
    unsigned char tail[NB_TFRECORD_TAIL];
    CHECK(sizeof payload == 24);
    nb__tfrecord_tail(payload, sizeof payload, tail);
    CHECK(memcmp(tail, want_tail, sizeof tail) == 0);
    /* the mask itself: rotate right by 15, add the constant */
    CHECK(nb__crc32c_mask(0) == 0xa282ead8u);
    CHECK(nb__crc32c_mask(0x00008000u) == 0xa282ead9u);
}

/* The scalars of tests/reference/tfevents.py. */
static const struct { const char *tag; int64_t step; double value, wall_time; } scalars[] = {
    {"train/loss", 1, 2.302585092994046, 1700000001.25},
    {"train/loss", 2, 1.75, 1700000002.0},
    {"train/lr", 2, 0.001, 1700000002.0},
    {"epoch/val_acc", 0, 0.0, 1700000003.0},
    {"epoch/train_loss", (int64_t)1 << 40, -0.5, 1700000004.0},
    {"diagnose/dense 1/grad_norm", -3, 3.4028234663852886e38, 1700000005.0},
    {"diagnose/\xc3\xa9paisseur/\xce\xb4", 8, 1e-40, 1700000006.125},
};

static void test_reference_file(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/ref.tfevents", tmpdir);
    nb_tb_writer *w;
    REQUIRE_OK(nb_tb_create(path, 1700000000.5, &w));
    CHECK(strcmp(nb_tb_path(w), path) == 0);
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++)
        CHECK_OK(nb_tb_scalar(w, scalars[i].tag, scalars[i].step, scalars[i].value,
                              scalars[i].wall_time));
    CHECK_OK(nb_tb_close(w));
    size_t n, m;
    unsigned char *got = test_read_file(path, &n);
    unsigned char *want = test_read_file(test_source_path("tests/reference/events.out.tfevents.ref"), &m);
    CHECK(got && want);
    if (got && want) {
        CHECKF(n == m, "%zu bytes written, the reference has %zu", n, m);
        size_t i = 0;
        while (i < n && i < m && got[i] == want[i]) i++;
        CHECKF(i == n && n == m, "first difference at byte %zu", i);
    }
    free(got);
    free(want);
    /* an existing file is never written to */
    nb_tb_writer *again = (nb_tb_writer *)&again;
    CHECK(nb_tb_create(path, 0, &again) == NB_ERR_IO && again == NULL);
    CHECK(strstr(nb_last_error(), path) != NULL);
    got = test_read_file(path, &n);
    CHECK(got && n == m);
    free(got);
    unlink(path);
}

/* Names in dir starting with "events.out.tfevents.". */
static int count_event_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "events.out.tfevents.", 20) == 0) n++;
    closedir(d);
    return n;
}

static void test_open_dir(void) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/logs/run1", tmpdir);
    nb_tb_writer *a, *b;
    REQUIRE_OK(nb_tb_open(dir, &a)); /* the missing parents are made */
    REQUIRE_OK(nb_tb_open(dir, &b)); /* the same second: another file */
    CHECK(strcmp(nb_tb_path(a), nb_tb_path(b)) != 0);
    CHECK(strncmp(nb_tb_path(a), dir, strlen(dir)) == 0);
    CHECK(count_event_files(dir) == 2);
    /* the version record is on disk at once; scalars after a flush */
    size_t n;
    unsigned char *bytes = test_read_file(nb_tb_path(a), &n);
    CHECK(bytes && n == 12 + 24 + 4);
    free(bytes);
    CHECK_OK(nb_tb_scalar(a, "x", 1, 0.5, 0));
    CHECK_OK(nb_tb_flush(a));
    bytes = test_read_file(nb_tb_path(a), &n);
    CHECK(bytes && n > 40);
    free(bytes);
    /* bad tags name the file */
    CHECK(nb_tb_scalar(a, "", 1, 0, 0) == NB_ERR_ARG);
    CHECK(nb_tb_scalar(a, "bad\xff", 1, 0, 0) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "UTF-8") != NULL);
    CHECK(nb_tb_scalar(a, NULL, 1, 0, 0) == NB_ERR_ARG);
    CHECK_OK(nb_tb_close(a));
    CHECK_OK(nb_tb_close(b));
    CHECK_OK(nb_tb_close(NULL));
    /* a file where the directory should be */
    char file[160];
    snprintf(file, sizeof file, "%s/plain", tmpdir);
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    CHECK(nb_tb_open(file, &a) == NB_ERR_IO && a == NULL);
    CHECK(strstr(nb_last_error(), file) != NULL);
    CHECK(nb_tb_open("", &a) == NB_ERR_ARG);
    unlink(file);
}

int main(void) {
    test_crc32c();
    if (!nb_tb_available()) {
        nb_tb_writer *w;
        CHECK(nb_tb_open("unused", &w) == NB_ERR_STATE && w == NULL);
        CHECK(strstr(nb_last_error(), "protobuf-c") != NULL);
        printf("built without protobuf-c: the writer's tests skipped\n");
        TEST_END();
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nb_tfevents_XXXXXX");
    if (!mkdtemp(tmpdir)) return perror("mkdtemp"), 1;
    test_reference_file();
    test_open_dir();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_END();
}
