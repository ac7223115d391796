/* The library's pool of threads (threads.c). */
#ifndef NB_PARALLEL_H
#define NB_PARALLEL_H

/* Run fn(ctx, 0 .. parts-1), part 0 on the caller and the others on the
 * pool's workers; returns when all are done.  Each part runs on exactly one
 * thread, but which thread is not fixed: a part's result must depend only on
 * its number. */
void nb__parallel(int parts, void (*fn)(void *ctx, int part), void *ctx);

/* Threads a part of work may use here: 1 inside a part of a parallel
 * region, else nb_threads(). */
int nb__free_threads(void);

#endif
