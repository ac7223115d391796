/* Thread-local error messages: the library reports, the caller decides. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

/* Format into a local buffer first: an argument may be last_error itself. */
static void set_message(const char *fmt, va_list ap) {
    char msg[sizeof last_error] = "";
    vsnprintf(msg, sizeof msg, fmt, ap);
    memcpy(last_error, msg, strlen(msg) + 1);
}

nb_status nb_err(nb_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_message(fmt, ap);
    va_end(ap);
    return s;
}

nb_status nb_err_prefix(nb_status s, const char *fmt, ...) {
    char prefix[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    return nb_err(s, "%s: %s", prefix, last_error);
}

nb_status nb_set_error(nb_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_message(fmt, ap);
    va_end(ap);
    return s;
}

const char *nb_last_error(void) { return last_error; }

void nb_clear_error(void) { last_error[0] = '\0'; }

const char *nb_status_name(nb_status s) {
    switch (s) {
    case NB_OK: return "ok";
    case NB_ERR_ARG: return "invalid argument";
    case NB_ERR_SHAPE: return "shape error";
    case NB_ERR_STATE: return "invalid state";
    case NB_ERR_NOMEM: return "out of memory";
    case NB_ERR_IO: return "i/o error";
    case NB_ERR_FORMAT: return "format error";
    case NB_ERR_NUMERIC: return "numeric error";
    }
    return "unknown status";
}

const char *nb_shape_str(char *buf, size_t size, int ndim, const int *dims) {
    size_t used = 0;
    int w = snprintf(buf, size, "[");
    used = w > 0 ? (size_t)w : 0;
    for (int d = 0; d < ndim && used < size; d++) {
        w = snprintf(buf + used, size - used, d ? ", %d" : "%d", dims[d]);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}
