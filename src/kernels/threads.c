/* The library's threads: one count for all of nabla (nb_set_threads), and a
 * pool of persistent workers that run the parts of parallel regions
 * (nb__parallel).  Work that splits itself (matrix products, convolutions,
 * large elementwise ops, optimiser updates) asks nb__free_threads() how many
 * threads it may use: inside a part the answer is 1, so nested work never
 * asks for more threads than the count.
 *
 * The pool: workers wait for a new generation of work, spinning briefly (the
 * next region of a training step usually follows within microseconds) and
 * then sleeping on a condition variable, so an idle program uses no CPU.
 * Code whose threads need setup, or whose own library has a thread setting
 * to follow, registers it here (parallel.h); the pool knows nothing else of
 * the work it runs. */
#define _GNU_SOURCE /* sched_yield is POSIX; sysconf's _SC_NPROCESSORS_ONLN */
#include "../core/internal.h"
#include "parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_SETUPS 4
#define SPIN_ROUNDS 20000 /* about 50-100 us of polling before sleeping */

static atomic_int thread_count; /* 0: not chosen yet */
static int (*_Atomic default_count)(void); /* NULL: the cores */

void nb__pool_default_threads(int (*count)(void)) { atomic_store(&default_count, count); }

static int default_threads(void) {
    int (*count)(void) = atomic_load(&default_count);
    if (count) return count();
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

nb_status nb_set_threads(int threads) {
    if (threads < 1 || threads > 1024)
        return nb_err(NB_ERR_ARG, "nb_set_threads: %d threads (expected 1 to 1024)", threads);
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    atomic_store(&thread_count, threads);
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

/* ---- the pool ----
 *
 * Part 0 of a region is the caller's.  The others are claimed one at a time
 * from a shared counter, by the caller and by every worker that is awake, so
 * a worker the system has not scheduled yet costs nothing: the caller simply
 * runs more parts itself.  (With every part claimed, which thread ran part 0
 * was a race: a batch-1 layer's half of the weights met the other core's
 * cache in about half of the calls.)
 * The counter carries the region's number in its high half; a worker late
 * for a finished region fails its claim instead of running a part of the
 * next one. */

static struct {
    pthread_mutex_t lock;     /* guards sleeping and starting workers */
    pthread_cond_t wake;
    pthread_mutex_t busy;     /* one region at a time */
    int started;              /* workers running */
    atomic_int ready;         /* workers done with their own setup */
    void (*setup[MAX_SETUPS])(void); /* run by each worker when it starts */
    atomic_int setups;
    /* The line the waiting workers poll, alone: each write to a line they
     * poll sends it back and forth between the cores, so a region's
     * description goes on the next line, and this one changes once. */
    _Alignas(64) atomic_uint region; /* number of the newest region */
    _Alignas(64) _Atomic unsigned long long claim; /* region << 32 | next part */
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

/* Set while this thread runs a part: work inside a part stays on it. */
static _Thread_local int in_part;

int nb__free_threads(void) { return in_part ? 1 : nb_threads(); }

/* Run part `part` of the current region on this thread and count it done. */
static void run_part(void (*fn)(void *, int), void *ctx, int part) {
    in_part = 1;
    fn(ctx, part);
    in_part = 0;
    atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
}

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
        run_part(fn, ctx, (int)(c & 0xFFFFFFFFull));
        c = atomic_load(&pool.claim);
    }
}

int nb__pool_at_worker_start(void (*setup)(void)) {
    pthread_mutex_lock(&pool.lock);
    int k = atomic_load(&pool.setups), ok = k < MAX_SETUPS;
    if (ok) {
        pool.setup[k] = setup;
        atomic_store(&pool.setups, k + 1); /* after the entry: a worker reads the count first */
    }
    pthread_mutex_unlock(&pool.lock);
    return ok ? 0 : -1;
}

/* ---- per-thread cleanup: one key whose destructor runs each thread's
 * registered functions on that thread as it ends ---- */

enum { MAX_RELEASES = 4 };
typedef struct thread_releases {
    void (*fn[MAX_RELEASES])(void);
    int n;
} thread_releases;

static pthread_key_t releases_key;
static int releases_ready; /* the key exists */
static pthread_once_t releases_once = PTHREAD_ONCE_INIT;

static void run_releases(void *arg) {
    thread_releases *r = arg;
    for (int k = 0; k < r->n; k++) r->fn[k]();
    free(r);
}

static void make_releases_key(void) {
    releases_ready = pthread_key_create(&releases_key, run_releases) == 0;
}

int nb__at_thread_exit(void (*release)(void)) {
    pthread_once(&releases_once, make_releases_key);
    if (!releases_ready) return -1;
    thread_releases *r = pthread_getspecific(releases_key);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return -1;
        if (pthread_setspecific(releases_key, r) != 0) {
            free(r);
            return -1;
        }
    }
    for (int k = 0; k < r->n; k++)
        if (r->fn[k] == release) return 0;
    if (r->n == MAX_RELEASES) return -1;
    r->fn[r->n++] = release;
    return 0;
}

/* ---- per-thread packing buffers ---- */

static _Thread_local void *scratch[NB__SCRATCH_SLOTS];

static void release_scratch(void) {
    for (int k = 0; k < NB__SCRATCH_SLOTS; k++) {
        free(scratch[k]);
        scratch[k] = NULL;
    }
}

void *nb__thread_scratch(int slot, size_t bytes) {
    if (scratch[slot]) return scratch[slot];
    scratch[slot] = aligned_alloc(64, (bytes + 63) / 64 * 64);
    /* if the release cannot be arranged, the buffer stays until the process ends */
    if (scratch[slot]) nb__at_thread_exit(release_scratch);
    return scratch[slot];
}

static void *worker(void *arg) {
    (void)arg;
    int setups = atomic_load(&pool.setups);
    for (int k = 0; k < setups; k++) pool.setup[k]();
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
    /* a new worker runs its setup first: wait, so that this happens during
     * the call that started it, not in some later region */
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
            /* part 0 is the caller's: the same part stays on the same core
             * from one region to the next (its data in that core's cache) */
            atomic_store(&pool.claim, (unsigned long long)id << 32 | 1);
            pthread_mutex_lock(&pool.lock);
            atomic_store(&pool.region, id);
            pthread_cond_broadcast(&pool.wake);
            pthread_mutex_unlock(&pool.lock);
            run_part(fn, ctx, 0);
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
