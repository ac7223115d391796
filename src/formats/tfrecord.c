/* TFRecord framing and its checksum, CRC-32C (tfrecord.h). */
#include "tfrecord.h"

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Bitwise: records are short and written a few per training step. */
uint32_t nb__crc32c(const void *p, size_t n) {
    const unsigned char *b = p;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

uint32_t nb__crc32c_mask(uint32_t crc) {
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

void nb__tfrecord_head(size_t n, unsigned char head[NB_TFRECORD_HEAD]) {
    uint64_t len = (uint64_t)n;
    for (int i = 0; i < 8; i++) head[i] = (unsigned char)(len >> (8 * i));
    put_u32(head + 8, nb__crc32c_mask(nb__crc32c(head, 8)));
}

void nb__tfrecord_tail(const void *data, size_t n, unsigned char tail[NB_TFRECORD_TAIL]) {
    put_u32(tail, nb__crc32c_mask(nb__crc32c(data, n)));
}
