/* Large buffers on 2 MiB pages (Linux's transparent huge pages, asked for
 * with madvise; a hint elsewhere ignored).
 *
 * Training streams through buffers of megabytes every step: the parameters,
 * their gradients and the optimiser's state (Adam reads or writes seven
 * arrays of 7.4 MB a step for a 1.9-million-parameter MLP), the activations,
 * and the data set, whose shuffled rows each sit on a page of their own.  On
 * 4 KiB pages each page costs an address translation, and in a virtual
 * machine a miss in the translation cache is a nested page walk. */
#define _DEFAULT_SOURCE /* madvise */
#include "internal.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* The whole pages of size `page` inside [p, p + bytes): [*lo, *hi), or 0. */
static int inner_pages(const void *p, size_t bytes, uintptr_t page, uintptr_t *lo,
                       uintptr_t *hi) {
    *lo = ((uintptr_t)p + page - 1) / page * page;
    *hi = ((uintptr_t)p + bytes) / page * page;
    return p && page && *hi > *lo;
}

void nb__release_pages(void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_DONTNEED)
    uintptr_t lo, hi;
    if (inner_pages(p, bytes, (uintptr_t)sysconf(_SC_PAGESIZE), &lo, &hi))
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
#else
    (void)p, (void)bytes;
#endif
}

void nb__prefer_huge_pages(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
    uintptr_t lo, hi;
    if (inner_pages(p, bytes, (uintptr_t)2 << 20, &lo, &hi))
        madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p, (void)bytes;
#endif
}
