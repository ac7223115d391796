/* Threads of the matrix kernels.
 *
 * One count for the whole library (nb_set_threads): nabla's own GEMM splits
 * its products over a small pool of persistent workers, and OpenBLAS (used
 * where nabla's kernel does not run) is told the same count.  Only one of the
 * two runs a given product, and nabla's other loops stay on the calling
 * thread, so the cores are never oversubscribed.
 *
 * The pool: workers wait for a new generation of work, spinning briefly (the
 * next product of a training step usually follows within microseconds) and
 * then sleeping on a condition variable, so an idle program uses no CPU. */
#define _GNU_SOURCE /* sched_yield is POSIX; sysconf's _SC_NPROCESSORS_ONLN */
#include "../core/internal.h"
#include "gemm.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef NB_USE_CBLAS
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);
#endif

#define MAX_THREADS 64
#define SPIN_ROUNDS 20000 /* about 50-100 us of polling before sleeping */

static atomic_int thread_count; /* 0: not chosen yet */

static int default_threads(void) {
#ifdef NB_USE_CBLAS
    /* honours OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, else the cores */
    return openblas_get_num_threads();
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
#endif
}

const char *nb_blas_core(void) {
    static char name[96];
#ifdef NB_AVX512_GEMM
    if (nb__sgemm_avx512_usable() && nb__gemm_kernel() == NB__GEMM_AVX512) {
#ifdef NB_USE_CBLAS
        snprintf(name, sizeof name, "nabla-avx512 (OpenBLAS %s for double only)",
                 openblas_get_corename());
#else
        snprintf(name, sizeof name, "nabla-avx512");
#endif
        return name;
    }
#endif
#ifdef NB_USE_CBLAS
    if (nb__gemm_kernel() != NB__GEMM_PORTABLE) {
        snprintf(name, sizeof name, "OpenBLAS %s", openblas_get_corename());
        return name;
    }
#endif
    return "portable";
}

nb_status nb_set_threads(int threads) {
    if (threads < 1 || threads > 1024)
        return nb_err(NB_ERR_ARG, "nb_set_threads: %d threads (expected 1 to 1024)", threads);
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    atomic_store(&thread_count, threads);
    nb__blas_threads();
    return NB_OK;
}

/* OpenBLAS gets the thread count only while it runs the products: a thread
 * it starts polls for work for a while, which would take a core from
 * nabla's own workers. */
void nb__blas_threads(void) {
#ifdef NB_USE_CBLAS
    int n = atomic_load(&thread_count);
    if (n > 0) openblas_set_num_threads(nb__gemm_kernel() == NB__GEMM_OPENBLAS ? n : 1);
#endif
}

int nb_threads(void) {
    int n = atomic_load(&thread_count);
    if (n == 0) {
        n = default_threads();
        if (n < 1) n = 1;
        if (n > MAX_THREADS) n = MAX_THREADS;
        atomic_store(&thread_count, n);
    }
    return n;
}

/* ---- the pool ----
 *
 * A region's parts are claimed one at a time from a shared counter, by the
 * caller and by every worker that is awake, so a worker the system has not
 * scheduled yet costs nothing: the caller simply runs more parts itself.
 * The counter carries the region's number in its high half; a worker late
 * for a finished region fails its claim instead of running a part of the
 * next one. */

static struct {
    pthread_mutex_t lock;     /* guards sleeping and starting workers */
    pthread_cond_t wake;
    pthread_mutex_t busy;     /* one region at a time */
    int started;              /* workers running */
    atomic_int ready;         /* workers done with their own setup */
    atomic_uint region;       /* number of the newest region */
    _Atomic unsigned long long claim; /* region << 32 | next part */
    atomic_int done;          /* parts finished */
    void (*_Atomic fn)(void *, int);
    void *_Atomic ctx;
    atomic_int parts;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
          .busy = PTHREAD_MUTEX_INITIALIZER};

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Set while this thread runs a part: products inside a part stay on it. */
static _Thread_local int in_part;

int nb__free_threads(void) { return in_part ? 1 : nb_threads(); }

/* Claim and run parts of region `id` until none is left. */
static void run_parts(unsigned id) {
    void (*fn)(void *, int) = atomic_load(&pool.fn);
    void *ctx = atomic_load(&pool.ctx);
    unsigned long long parts = (unsigned long long)atomic_load(&pool.parts);
    unsigned long long c = atomic_load(&pool.claim);
    for (;;) {
        if ((c >> 32) != id || (c & 0xFFFFFFFFull) >= parts) return;
        if (!atomic_compare_exchange_weak(&pool.claim, &c, c + 1)) continue;
        /* the claim succeeded while the region was open, so fn, ctx and parts
         * (read before it) are the region's */
        in_part = 1;
        fn(ctx, (int)(c & 0xFFFFFFFFull));
        in_part = 0;
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
        c = atomic_load(&pool.claim);
    }
}

static void *worker(void *arg) {
    (void)arg;
    nb__gemm_thread_init();
    unsigned seen = atomic_load(&pool.region);
    atomic_fetch_add(&pool.ready, 1); /* set up: ensure_workers may return */
    for (;;) {
        unsigned r;
        int spins = 0;
        while ((r = atomic_load_explicit(&pool.region, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&pool.lock);
            while ((r = atomic_load(&pool.region)) == seen)
                pthread_cond_wait(&pool.wake, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
            break;
        }
        seen = r;
        run_parts(r);
    }
    return NULL;
}

/* A child process has only the thread that forked: start its workers anew. */
static void forget_workers(void) {
    pthread_mutex_init(&pool.lock, NULL);
    pthread_mutex_init(&pool.busy, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pool.started = 0;
    atomic_store(&pool.ready, 0);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(NULL, NULL, forget_workers); }

/* Start workers until n threads (with the caller) can run; returns how many can. */
static int ensure_workers(int n) {
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&pool.lock);
    while (pool.started < n - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        pool.started++;
    }
    int have = pool.started + 1;
    pthread_mutex_unlock(&pool.lock);
    /* a new worker allocates its buffers first: wait, so that this happens
     * during the call that started it, not in some later step */
    while (atomic_load(&pool.ready) < have - 1) sched_yield();
    return have;
}

void nb__parallel(int parts, void (*fn)(void *ctx, int part), void *ctx) {
    if (parts > 1 && !in_part && pthread_mutex_trylock(&pool.busy) == 0) {
        int threads = nb_threads();
        if (ensure_workers(parts < threads ? parts : threads) > 1) {
            unsigned id = atomic_load(&pool.region) + 1;
            /* close the counter under the new number before changing the region's
             * description, so no late claim can pair old and new */
            atomic_store(&pool.claim, (unsigned long long)id << 32 | 0xFFFFFFFFull);
            atomic_store(&pool.fn, fn);
            atomic_store(&pool.ctx, ctx);
            atomic_store(&pool.parts, parts);
            atomic_store(&pool.done, 0);
            atomic_store(&pool.claim, (unsigned long long)id << 32);
            pthread_mutex_lock(&pool.lock);
            atomic_store(&pool.region, id);
            pthread_cond_broadcast(&pool.wake);
            pthread_mutex_unlock(&pool.lock);
            run_parts(id);
            while (atomic_load_explicit(&pool.done, memory_order_acquire) < parts) cpu_relax();
            pthread_mutex_unlock(&pool.busy);
            return;
        }
        pthread_mutex_unlock(&pool.busy);
    }
    int outer = in_part; /* in use elsewhere, or no threads: run the parts here */
    in_part = 1;
    for (int p = 0; p < parts; p++) fn(ctx, p);
    in_part = outer;
}
