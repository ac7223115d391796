/* An ONNX file read and unpacked with the generated schema, for the tests
 * that look inside or change exported models (NULL, with a failed check,
 * when it does not read or decode).  Include after test.h and files.h. */
#ifndef NB_TEST_ONNX_READ_H
#define NB_TEST_ONNX_READ_H

#include "onnx.pb-c.h"

#include <stdlib.h>

static inline Onnx__ModelProto *test_read_onnx(const char *path) {
    size_t len = 0;
    unsigned char *buf = test_read_file(path, &len);
    Onnx__ModelProto *m = buf ? onnx__model_proto__unpack(NULL, len, buf) : NULL;
    free(buf);
    CHECKF(m != NULL, "%s does not read as ONNX", path);
    return m;
}

#endif
