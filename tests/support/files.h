/* File helpers shared by the tests. */
#ifndef NB_TEST_FILES_H
#define NB_TEST_FILES_H

#include <stddef.h>

/* The whole file in a malloc'd buffer (*len bytes), or NULL if unreadable. */
unsigned char *test_read_file(const char *path, size_t *len);

#endif
