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

void nb__release_pages(void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_DONTNEED)
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) / page * page;
    uintptr_t hi = ((uintptr_t)p + bytes) / page * page;
    if (p && page && hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
#else
    (void)p, (void)bytes;
#endif
}

void nb__prefer_huge_pages(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
    const uintptr_t page = (uintptr_t)2 << 20;
    uintptr_t lo = ((uintptr_t)p + page - 1) / page * page;
    uintptr_t hi = ((uintptr_t)p + bytes) / page * page;
    if (p && hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* whole pages inside */
#else
    (void)p, (void)bytes;
#endif
}
