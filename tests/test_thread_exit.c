/* Threads of the caller's own that run products and then end do not leave
 * their packing buffers behind (nb__at_thread_exit): 64 threads one after
 * the other, each running an fp32 product (and a bf16 one where a bf16
 * kernel runs here), must not raise the memory in use (glibc's mallinfo2)
 * by more than a few buffers' worth; without the release each thread kept
 * more than 2 MB.  And a release registered on a thread runs once, on that
 * thread, when it ends. */
#define _GNU_SOURCE
#include "nabla.h"
#include "test.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"

#include <pthread.h>
#include <stdlib.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

enum { M = 64, N = 96, K = 80, THREADS = 64 };

static float a[M * K], b[K * N], c[M * N];

static void *products(void *arg) {
    (void)arg;
    nb_gemm(0, 0, M, N, K, 1, a, K, b, N, 0, c, N);
#ifdef NB_BF16_GEMM
    if (!nb__bf16_missing()) nb__gemm_bf16(0, 0, M, N, K, 1, a, K, b, N, 0, c, N);
#endif
    return NULL;
}

static size_t in_use(void) {
#ifdef __GLIBC__
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
#else
    return 0;
#endif
}

static void run_thread(void *(*fn)(void *)) {
    pthread_t t;
    REQUIRE_OK(pthread_create(&t, NULL, fn, NULL) == 0 ? NB_OK : NB_ERR_STATE);
    pthread_join(t, NULL);
}

static void test_buffers_released(void) {
    for (int k = 0; k < M * K; k++) a[k] = (float)(k % 7) * 0.25f;
    for (int k = 0; k < K * N; k++) b[k] = (float)(k % 5) * 0.5f;
    run_thread(products); /* the library's one-time allocations */
    size_t before = in_use();
    for (int t = 0; t < THREADS; t++) run_thread(products);
    size_t after = in_use();
#ifdef __GLIBC__
    CHECKF(after < before + ((size_t)8 << 20),
           "%d threads that ran products and ended left %.1f MB in use", THREADS,
           (double)(after - before) / (1 << 20));
#else
    (void)before, (void)after;
    printf("not glibc: memory in use is not checked\n");
#endif
}

static int runs;
static pthread_t ran_on;
static void count_release(void) {
    runs++;
    ran_on = pthread_self();
}

static pthread_t registered_on;
static void *register_twice(void *arg) {
    (void)arg;
    registered_on = pthread_self();
    CHECK(nb__at_thread_exit(count_release) == 0);
    CHECK(nb__at_thread_exit(count_release) == 0); /* the same function: once */
    CHECK(runs == 0);
    return NULL;
}

static void test_release_runs_once(void) {
    run_thread(register_twice);
    CHECKF(runs == 1, "the release ran %d times", runs);
    CHECK(pthread_equal(ran_on, registered_on));
}

int main(void) {
    nb_set_threads(1);
    test_buffers_released();
    test_release_runs_once();
    TEST_END();
}
