/* The one UTF-8 validator of the file formats.  Not part of the public API. */
#ifndef NB_FORMATS_UTF8_H
#define NB_FORMATS_UTF8_H

#include <stddef.h>

/* Well-formed UTF-8 throughout: no overlong forms, no surrogates, nothing
 * above U+10FFFF. */

/* Length of the character starting at s (n >= 1 bytes available), or 0 if
 * the bytes there are not well-formed UTF-8. */
size_t nb__utf8_seq(const unsigned char *s, size_t n);

/* Offset of the first byte of s[0..len) that starts no well-formed
 * character, or len if all of it is well-formed. */
size_t nb__utf8_invalid_at(const char *s, size_t len);

/* 1 if s[0..len) is well-formed UTF-8, else 0. */
int nb__utf8_valid(const char *s, size_t len);

#endif
