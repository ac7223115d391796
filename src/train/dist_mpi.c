/* The MPI transport of nb_dist (libnabla_mpi, built when MPI is found):
 * MPI only moves the numbers; nb_dist adds them in a fixed order (dist.c).
 * Kept out of libnabla, so that the library needs no MPI. */
#include <mpi.h>
#include <stdlib.h>

#include "nabla.h"

/* MPI counts are ints: a block larger than 1 GiB goes as contiguous
 * elements of 2^20 bytes (nb_dist_sum makes such blocks whole multiples). */
typedef struct mpi_ctx {
    MPI_Comm comm;
    MPI_Datatype big;        /* 2^20 contiguous bytes */
} mpi_ctx;

enum { BIG = 1 << 20 };

static nb_status failed(int rc, const char *what) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
    text[len] = '\0';
    return nb_set_error(NB_ERR_IO, "%s: %s", what, len ? text : "MPI error");
}

/* A count and type for `bytes`: bytes themselves, or 2^20-byte elements
 * (callers make such large blocks whole multiples, or they fail). */
static int as_type(const mpi_ctx *c, size_t bytes, int *count, MPI_Datatype *type) {
    if (bytes <= (size_t)1 << 30) {
        *count = (int)bytes;
        *type = MPI_BYTE;
        return 1;
    }
    if (bytes % BIG || bytes / BIG > 0x7fffffff) return 0;
    *count = (int)(bytes / BIG);
    *type = c->big;
    return 1;
}

static nb_status mpi_allgather(void *ctx, const void *in, void *out, size_t bytes) {
    mpi_ctx *c = ctx;
    int n;
    MPI_Datatype t;
    if (!as_type(c, bytes, &n, &t))
        return nb_set_error(NB_ERR_ARG, "MPI_Allgather: a block of %zu bytes is too large", bytes);
    int rc = MPI_Allgather(in, n, t, out, n, t, c->comm);
    return rc == MPI_SUCCESS ? NB_OK : failed(rc, "MPI_Allgather");
}

static nb_status mpi_alltoall(void *ctx, const void *in, void *out, size_t bytes) {
    mpi_ctx *c = ctx;
    int n;
    MPI_Datatype t;
    if (!as_type(c, bytes, &n, &t))
        return nb_set_error(NB_ERR_ARG, "MPI_Alltoall: a block of %zu bytes is too large", bytes);
    int rc = MPI_Alltoall(in, n, t, out, n, t, c->comm);
    return rc == MPI_SUCCESS ? NB_OK : failed(rc, "MPI_Alltoall");
}

static nb_status mpi_broadcast(void *ctx, void *buf, size_t bytes) {
    mpi_ctx *c = ctx;
    char *p = buf;
    while (bytes > 0) { /* in pieces that an int counts */
        int n = bytes > (size_t)1 << 30 ? 1 << 30 : (int)bytes;
        int rc = MPI_Bcast(p, n, MPI_BYTE, 0, c->comm);
        if (rc != MPI_SUCCESS) return failed(rc, "MPI_Bcast");
        p += n;
        bytes -= (size_t)n;
    }
    return NB_OK;
}

static void mpi_free(void *ctx) {
    mpi_ctx *c = ctx;
    MPI_Type_free(&c->big);
    MPI_Comm_free(&c->comm);
    free(c);
}

nb_dist *nb_dist_mpi(const void *comm) {
    int inited = 0, rank = 0, size = 0;
    MPI_Initialized(&inited);
    if (!comm || !inited) {
        nb_set_error(NB_ERR_ARG, "nb_dist_mpi: %s", comm ? "MPI is not initialised (MPI_Init)"
                                                  : "communicator is NULL");
        return NULL;
    }
    mpi_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        nb_set_error(NB_ERR_NOMEM, "nb_dist_mpi: out of memory");
        return NULL;
    }
    /* a communicator of its own: no mix-up with the program's messages, and
     * errors come back as return codes instead of aborting the job */
    int rc = MPI_Comm_dup(*(const MPI_Comm *)comm, &c->comm);
    if (rc != MPI_SUCCESS) {
        free(c);
        failed(rc, "nb_dist_mpi: MPI_Comm_dup");
        return NULL;
    }
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &rank);
    MPI_Comm_size(c->comm, &size);
    MPI_Type_contiguous(BIG, MPI_BYTE, &c->big);
    MPI_Type_commit(&c->big);
    static const nb_dist_ops ops = {mpi_allgather, mpi_alltoall, mpi_broadcast, mpi_free};
    nb_dist *d = nb_dist_new(&ops, c, rank, size);
    if (!d) mpi_free(c);
    return d;
}
