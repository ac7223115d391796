/* TFRecord framing, the container of TensorBoard's event files: each record
 * is its length (uint64), the masked CRC-32C of those 8 bytes, the data, and
 * the masked CRC-32C of the data, all little-endian.  Internal to src/formats. */
#ifndef NB_FORMATS_TFRECORD_H
#define NB_FORMATS_TFRECORD_H

#include <stddef.h>
#include <stdint.h>

#define NB_TFRECORD_HEAD 12 /* length and its CRC */
#define NB_TFRECORD_TAIL 4  /* the data's CRC     */

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of n bytes. */
uint32_t nb__crc32c(const void *p, size_t n);
/* TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
uint32_t nb__crc32c_mask(uint32_t crc);
/* The bytes before and after n bytes of data. */
void nb__tfrecord_head(size_t n, unsigned char head[NB_TFRECORD_HEAD]);
void nb__tfrecord_tail(const void *data, size_t n, unsigned char tail[NB_TFRECORD_TAIL]);

#endif
