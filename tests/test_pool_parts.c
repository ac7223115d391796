/* The thread pool's regions (nb__parallel): every part runs exactly once,
 * part 0 always on the calling thread (so that the same part of each
 * region meets its data in the same core's cache: a batch-1 layer's half of
 * the weights, for one), the other parts on any thread, and a region opened
 * inside a part runs on that part's thread alone. */
#include "nabla.h"
#include "test.h"
#include "kernels/parallel.h"

#include <pthread.h>
#include <stdatomic.h>

enum { REGIONS = 2000, MAX_PARTS = 9 };

typedef struct region {
    pthread_t caller;
    atomic_int runs[MAX_PARTS];
    atomic_int part0_elsewhere, nested_elsewhere, nested_runs;
} region;

static void nested_part(void *ctx, int part) {
    region *r = ctx;
    (void)part;
    atomic_fetch_add(&r->nested_runs, 1);
}

typedef struct nested {
    region *r;
    pthread_t owner;
} nested;

static void nested_check(void *ctx, int part) {
    nested *n = ctx;
    (void)part;
    if (!pthread_equal(pthread_self(), n->owner)) atomic_fetch_add(&n->r->nested_elsewhere, 1);
    nested_part(n->r, part);
}

static void a_part(void *ctx, int part) {
    region *r = ctx;
    atomic_fetch_add(&r->runs[part], 1);
    if (part == 0 && !pthread_equal(pthread_self(), r->caller))
        atomic_fetch_add(&r->part0_elsewhere, 1);
    if (part == 1) { /* a region inside a part: its parts stay on this thread */
        nested n = {r, pthread_self()};
        nb__parallel(3, nested_check, &n);
    }
    for (volatile int spin = 0; spin < 200 * (part + 1); spin++) {
    }
}

int main(void) {
    CHECK_OK(nb_set_threads(2));
    for (int parts = 2; parts <= MAX_PARTS; parts++) {
        region r = {.caller = pthread_self()};
        for (int k = 0; k < REGIONS; k++) nb__parallel(parts, a_part, &r);
        int wrong = 0;
        for (int p = 0; p < parts; p++) wrong += atomic_load(&r.runs[p]) != REGIONS;
        CHECKF(wrong == 0, "%d parts: %d parts did not run once a region", parts, wrong);
        CHECKF(atomic_load(&r.part0_elsewhere) == 0,
               "%d parts: part 0 ran on another thread than the caller in %d of %d regions",
               parts, atomic_load(&r.part0_elsewhere), REGIONS);
        CHECKF(atomic_load(&r.nested_runs) == 3 * REGIONS && atomic_load(&r.nested_elsewhere) == 0,
               "%d parts: nested regions ran %d parts (expected %d), %d on another thread",
               parts, atomic_load(&r.nested_runs), 3 * REGIONS,
               atomic_load(&r.nested_elsewhere));
    }
    TEST_END();
}
