/* Helpers shared by the file loaders in src/formats/.  Not part of the public API. */
#ifndef NB_IO_H
#define NB_IO_H

#include "../core/internal.h"

/* Copy untrusted text into dst (cap bytes, always terminated) so it can be
 * shown in an error message: valid UTF-8 is kept, control characters and
 * stray bytes become \xNN, and more than max_bytes of input ends in "...". */
const char *nb__quote(char *dst, size_t cap, const char *s, size_t len, size_t max_bytes);

/* Read a whole file, plain or gzip-compressed, into a malloc'd buffer
 * (with a terminating '\0' not counted in *len).  Refuses files larger than
 * max_bytes; memory grows only as bytes actually arrive. */
nb_status nb__read_file(const char *path, size_t max_bytes, char **buf, size_t *len);

/* Room for more of a `want`-byte payload that arrives in pieces: when the
 * buffer is full (*cap bytes), double it, from 1 MiB up to want.  A header
 * that lies about the size then costs at most about twice what the file
 * really holds.  On failure *buf is freed and NB_ERR_NOMEM returned. */
nb_status nb__grow_toward(unsigned char **buf, size_t *cap, size_t want, const char *name);

/* Memory for a data set's byte samples, which training reads a shuffled
 * batch at a time: on 2 MiB pages where the system gives them
 * (nb__prefer_huge_pages).  On 4 KiB pages
 * every row of a batch is on a page of its own, and converting a batch
 * waited on address translation (in a virtual machine a nested page walk):
 * 8.6% of the Fashion-MNIST MLP's step, 3.5% on 2 MiB pages.  NULL when out
 * of memory; released with free(). */
unsigned char *nb__alloc_samples(size_t bytes);
/* buf's bytes moved into such memory and buf freed: copied 2 MiB at a time,
 * each copied piece of buf handed back at once (nb__release_pages), so the
 * data set is never held twice.  Out of memory: buf itself. */
unsigned char *nb__move_to_samples(unsigned char *buf, size_t bytes);

/* Class names looked up by text (src/formats/classes.c): sorted once, then
 * a binary search per label. */
typedef struct nb__class_entry {
    const char *name;
    int index;
} nb__class_entry;
typedef struct nb__class_lookup {
    nb__class_entry *entries;
    int n;
} nb__class_lookup;
/* names[0..n) (not copied: they must outlive l); n 0 or names NULL: empty. */
nb_status nb__class_lookup_init(nb__class_lookup *l, char *const *names, int n);
/* The index of the class named s[0..len), or -1. */
int nb__class_find(const nb__class_lookup *l, const char *s, size_t len);
void nb__class_lookup_free(nb__class_lookup *l);
/* "classes 'a', 'b', 'c'" (at most 20 names) or, names NULL, "classes 0 to n-1". */
const char *nb__class_list(char *buf, size_t size, char *const *names, int n);

#endif
