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

#endif
