/* The library's threads (threads.c): one thread count and a pool of workers
 * that run the parts of parallel regions. */
#ifndef NB_PARALLEL_H
#define NB_PARALLEL_H

#include <stddef.h>

/* Run fn(ctx, 0 .. parts-1), part 0 on the caller and the others on the
 * pool's workers; returns when all are done.  Each part runs on exactly one
 * thread, but which thread is not fixed: a part's result must depend only on
 * its number.  A region started inside a part runs its parts there, in
 * order. */
void nb__parallel(int parts, void (*fn)(void *ctx, int part), void *ctx);

/* Threads a part of work may use here: 1 inside a part of a parallel
 * region, else nb_threads(). */
int nb__free_threads(void);

/* The items [*lo, *hi) of n that part `part` of `parts` takes: equal shares
 * in part order, each edge rounded down to a multiple of `align` except the
 * end of the last part, which is n.  Depends only on the part number. */
static inline void nb__part_range(size_t n, int part, int parts, size_t align, size_t *lo,
                                  size_t *hi) {
    *lo = n * (size_t)part / (size_t)parts / align * align;
    *hi = part + 1 == parts ? n : n * (size_t)(part + 1) / (size_t)parts / align * align;
}

/* The share of part `part` of `parts` of an M x N product split into whole
 * blocks of `block` rows (by_rows) or columns: rows [*i0, *i1) and columns
 * [*j0, *j1), empty when the part has no block. */
static inline void nb__block_range(int M, int N, int by_rows, int block, int part, int parts,
                                   int *i0, int *i1, int *j0, int *j1) {
    int n = by_rows ? M : N;
    size_t lo, hi;
    nb__part_range((size_t)(n + block - 1) / (size_t)block, part, parts, 1, &lo, &hi);
    int a = (int)lo * block, b = (int)hi * block < n ? (int)hi * block : n;
    *i0 = by_rows ? a : 0, *i1 = by_rows ? b : M;
    *j0 = by_rows ? 0 : a, *j1 = by_rows ? N : b;
}

/* How a product of M x N x K splits between `threads` threads into blocks
 * of mr rows or nr-column panels: returns the parts (1: one thread, below
 * min_macs multiply-adds counted over whole blocks and panels) and sets
 * *by_rows when C is narrow (rows then, not columns). */
static inline int nb__product_parts(int M, int N, int K, int mr, int nr, int threads,
                                    double min_macs, int *by_rows) {
    int panels = (N + nr - 1) / nr, blocks = (M + mr - 1) / mr;
    *by_rows = 0;
    /* the work done, not the product's size: a 10-column C costs a 32-wide panel */
    if (threads < 2 || (double)blocks * mr * panels * nr * K < min_macs) return 1;
    *by_rows = panels < 2 * threads && blocks > panels;
    int units = *by_rows ? blocks : panels;
    return units < threads ? units : threads;
}

/* How many parts to split `work` items into so each part has at least
 * `per_part` of them: between 1 and the threads free to take them. */
static inline int nb__part_count(size_t work, size_t per_part) {
    size_t parts = work / per_part;
    int threads = nb__free_threads();
    return parts < 1 ? 1 : parts > (size_t)threads ? threads : (int)parts;
}

/* Run setup on each worker thread when it starts, before its first part:
 * for instance to allocate per-thread buffers, so that no later region
 * allocates.  The thread that started the worker waits for it.  Register
 * before the first region (from a constructor): a worker that is already
 * running does not run a setup registered later.  At most four; returns 0,
 * or -1 when they are taken. */
int nb__pool_at_worker_start(void (*setup)(void));

/* Run release on the calling thread when it ends (pthread_exit or the end of
 * its start routine): for per-thread buffers, which a program that starts
 * and ends threads would otherwise leak with each one.  Registering the same
 * function twice on a thread runs it once; at most four per thread; returns
 * 0, or -1 (then release does not run). */
int nb__at_thread_exit(void (*release)(void));

/* A matrix kernel's packing buffers: slot `slot` of the calling thread,
 * `bytes` bytes aligned to 64, allocated at the slot's first call on the
 * thread and freed when the thread ends (nb__at_thread_exit); NULL when out
 * of memory (a later call tries again).  A slot's size is fixed: a size
 * that grew with the products would make a thread allocate whenever it first
 * ran a larger one, which, with parts claimed dynamically, could be in any
 * later step.  Kernels also fill their slots as pool workers start
 * (nb__pool_at_worker_start), so that no region allocates. */
enum {
    NB__SCRATCH_AVX512_B, NB__SCRATCH_AVX512_A, NB__SCRATCH_AVX2_B, NB__SCRATCH_AVX2_A,
    NB__SCRATCH_BF16_B, NB__SCRATCH_BF16_A, NB__SCRATCH_BF16_SHARED_A,
    NB__SCRATCH_SLOTS
};
void *nb__thread_scratch(int slot, size_t bytes);

/* Where nb_threads() takes its count until nb_set_threads sets one (by
 * default the cores): code with a thread setting of its own to follow
 * registers it before nb_threads() is first called (from a constructor). */
void nb__pool_default_threads(int (*count)(void));

#endif
