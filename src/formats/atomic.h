/* Atomic file replacement for every file nabla writes (weights, checkpoints).
 * Internal to src/formats. */
#ifndef NB_FORMATS_ATOMIC_H
#define NB_FORMATS_ATOMIC_H

#include "../core/internal.h"

/* A file being written: the bytes go to a temporary file beside the target
 * and replace it only on commit. */
typedef struct nb_afile {
    int fd;
    char *tmp;          /* temporary path (owned)       */
    const char *path;   /* target path                  */
    int have_mode;      /* the target exists: keep mode */
    unsigned mode;
} nb_afile;

/* Create the temporary file in path's directory. */
nb_status nb__afile_open(nb_afile *f, const char *path);
/* Append n bytes; on error the file is aborted (temporary removed). */
nb_status nb__afile_write(nb_afile *f, const void *p, size_t n);
/* fsync, close, rename over the target, fsync the directory.  On error the
 * temporary file is removed and the target is untouched. */
nb_status nb__afile_commit(nb_afile *f);
/* Give up: close and remove the temporary file (safe to call twice). */
void nb__afile_abort(nb_afile *f);

#endif
