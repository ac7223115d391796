/* Internals shared by the safetensors reader (safetensors_read.c), writer
 * (safetensors_write.c), graph weights and checkpoints (src/formats and
 * src/model only). */
#ifndef NB_FORMATS_ST_INTERNAL_H
#define NB_FORMATS_ST_INTERNAL_H

#include "../core/internal.h"

/* Largest header either side accepts: the reference implementation's limit. */
#define NB_ST_MAX_HEADER 100000000u

/* The dtype called name (exact, upper case); 0 if there is none. */
int nb__st_dtype_lookup(const char *name, nb_st_dtype *out);

/* Element count of a shape; 0 with *ok = 0 when it overflows 64 bits. */
uint64_t nb__st_shape_numel(int ndim, const int *dims, int *ok);

/* Byte size of numel elements of dtype t into *bytes; 0 with *why set when
 * it overflows or is not a whole number of bytes. */
int nb__st_tensor_bytes(uint64_t numel, nb_st_dtype t, uint64_t *bytes, const char **why);

/* Serialise tensors and metadata into one malloc'ed buffer (what
 * nb_st_write would put in the file).  Used by the tests and the fuzzer. */
nb_status nb__st_serialize(const nb_st_entry *tensors, int n, const nb_kv *meta, int n_meta,
                           unsigned char **out, size_t *out_len);

/* Parameters and then buffers of g as tensors of dtype (NB_ST_F32 or
 * NB_ST_F64; counting buffers I64) named after their nodes.  *entries
 * (*count of them) and *bytes, which holds their little-endian data, are
 * malloc'ed; free both. */
nb_status nb__state_entries(const nb_graph *g, nb_st_dtype dtype, nb_st_entry **entries,
                            unsigned char **bytes, int *count);

/* Check that st holds every parameter and buffer of g with its shape and a
 * float dtype (counting buffers may be I64/I32), and convert the values into
 * new malloc'ed arrays: *staged laid out like nb_params(g), *staged_buffers
 * the buffers one after another in nb_buffer_tensor order.  A tensor that is
 * neither is an error unless allow_extra, or its name starts with
 * reserved_prefix (may be NULL).  Names matching one of the n_skip glob
 * patterns skip (fnmatch) are ignored in the file and staged from the
 * graph's current values.  label names the file in messages. */
nb_status nb__stage_params(const nb_safetensors *st, const char *label, const nb_graph *g,
                           int allow_extra, const char *reserved_prefix,
                           const char *const *skip, int n_skip, nb_real **staged,
                           nb_real **staged_buffers);

/* Copy what nb__stage_params staged into g's parameters and buffers. */
void nb__apply_staged(nb_graph *g, const nb_real *params, const nb_real *buffers);

/* Little-endian float element k of a tensor of dtype F32/F64/F16/BF16,
 * converted to nb_real.  *ok = 0 if a finite value overflows nb_real. */
nb_real nb__st_get_real(const nb_st_tensor *t, size_t k, int *ok);

/* Store v as a little-endian F32 or F64 at p. */
void nb__st_put_real(unsigned char *p, nb_st_dtype dtype, nb_real v);

/* A name made safe for a message: at most ~80 bytes, control characters as '?'. */
const char *nb__st_show(char buf[100], const char *s);

#endif
