/* File helpers shared by the tests. */
#ifndef NB_TEST_FILES_H
#define NB_TEST_FILES_H

#include <stddef.h>

/* The whole file in a malloc'd buffer (*len bytes), or NULL if unreadable. */
unsigned char *test_read_file(const char *path, size_t *len);

/* The path of a file of the source tree ("tests/corpus/..."), so that a test
 * finds it from any working directory.  A static buffer, overwritten by the
 * next call. */
const char *test_source_path(const char *relative);

#endif
