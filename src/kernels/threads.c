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
        snprintf(name, sizeof name, "nabla-avx512 (OpenBLAS %s unused for float)",
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
#ifdef NB_USE_CBLAS
    openblas_set_num_threads(threads);
#endif
    return NB_OK;
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

/* ---- the pool ---- */

/* Worker w runs part w of a region when its slot's ticket changes. */
typedef struct slot {
    atomic_uint ticket;
    void (*fn)(void *, int);
    void *ctx;
} slot;

static struct {
    pthread_mutex_t lock;     /* guards sleeping and starting workers */
    pthread_cond_t wake;
    pthread_mutex_t busy;     /* one parallel region at a time */
    int started;              /* workers running: ids 1 .. started */
    atomic_int remaining;     /* workers' parts not finished */
    slot slots[MAX_THREADS];
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
          .busy = PTHREAD_MUTEX_INITIALIZER};

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    slot *s = &pool.slots[id];
    unsigned seen = 0;
    for (;;) {
        unsigned t;
        int spins = 0;
        while ((t = atomic_load_explicit(&s->ticket, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&pool.lock);
            while ((t = atomic_load(&s->ticket)) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
            break;
        }
        seen = t;
        s->fn(s->ctx, id);
        atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_release);
    }
    return NULL;
}

/* Start workers up to id n-1; returns how many threads (with the caller) run. */
static int ensure_workers(int n) {
    pthread_mutex_lock(&pool.lock);
    while (pool.started < n - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker, (void *)(intptr_t)(pool.started + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        pool.started++;
    }
    int have = pool.started + 1;
    pthread_mutex_unlock(&pool.lock);
    return have;
}

void nb__parallel(int parts, void (*fn)(void *ctx, int part), void *ctx) {
    if (parts > MAX_THREADS) parts = MAX_THREADS; /* callers never ask for more */
    if (parts > 1 && pthread_mutex_trylock(&pool.busy) == 0) {
        if (ensure_workers(parts) >= parts) {
            atomic_store(&pool.remaining, parts - 1);
            pthread_mutex_lock(&pool.lock);
            for (int w = 1; w < parts; w++) {
                pool.slots[w].fn = fn;
                pool.slots[w].ctx = ctx;
                atomic_fetch_add_explicit(&pool.slots[w].ticket, 1, memory_order_release);
            }
            pthread_cond_broadcast(&pool.wake);
            pthread_mutex_unlock(&pool.lock);
            fn(ctx, 0);
            while (atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0) cpu_relax();
            pthread_mutex_unlock(&pool.busy);
            return;
        }
        pthread_mutex_unlock(&pool.busy);
    }
    for (int p = 0; p < parts; p++) fn(ctx, p); /* in use elsewhere, or no threads */
}
