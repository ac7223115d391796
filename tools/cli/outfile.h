/* Text outputs (--log, --plot, reports) replaced atomically, as the library
 * replaces weights and checkpoints: the text goes to a temporary file beside
 * the target, ".NAME.tmp-XXXXXX", which is renamed over it only when complete.
 * A full disk or a kill leaves the previous file whole. */
#ifndef NB_OUTFILE_H
#define NB_OUTFILE_H

#include <stdio.h>

typedef struct outfile {
    FILE *f;
    char *tmp;               /* temporary path (owned)                     */
    const char *path;
} outfile;

/* Create the temporary file; NULL with errno on failure.  A target that
 * exists must be a regular file (EEXIST-like: errno = EISDIR or EINVAL). */
FILE *outfile_open(outfile *o, const char *path);
/* Flush, fsync, close and rename over the target; 0, or -1 with errno (the
 * temporary file removed, the target untouched). */
int outfile_commit(outfile *o);
/* Give up: close and remove the temporary file. */
void outfile_abort(outfile *o);
/* The temporary path alone (for writers that take a path, like svg_write):
 * *tmp receives a malloc'ed name of a new empty file.  0, or -1 with errno. */
int outfile_temp(const char *path, char **tmp);
/* Rename a finished temporary file made by outfile_temp over path (after
 * fsync); on failure it is removed.  0, or -1 with errno. */
int outfile_replace(const char *tmp, const char *path);
/* Remove the temporary files that killed writes of path left behind. */
void outfile_remove_stale(const char *path);

#endif
