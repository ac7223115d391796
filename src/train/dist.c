/* A group of processes training one model (data parallelism): sums in a
 * fixed order over any transport, and the broadcast of the starting state.
 *
 * The transport's own reduction (MPI_Allreduce) may add the processes'
 * numbers in any order, and a float sum depends on its order.  So nabla
 * only moves numbers with it and adds them itself, always rank 0 first:
 * the buffer is cut into one block per process; an all-to-all gives process
 * j every process's block j, which it sums in rank order; an all-gather then
 * gives everyone every summed block.  Each process sends 2 (N-1)/N of the
 * buffer, as in a ring allreduce (docs/scaling.md). */
#include "train.h"

#include <stdlib.h>
#include <string.h>

struct nb_dist {
    nb_dist_ops ops;
    void *ctx;
    int rank, size;
    void *send, *recv;       /* scratch, grown as needed, kept between steps */
    size_t cap;              /* bytes of each                               */
};

nb_dist *nb_dist_new(const nb_dist_ops *ops, void *ctx, int rank, int size) {
    if (!ops || !ops->allgather || !ops->alltoall || !ops->broadcast) {
        nb_err(NB_ERR_ARG, "nb_dist_new: the transport needs allgather, alltoall and broadcast");
        return NULL;
    }
    if (size < 1 || rank < 0 || rank >= size) {
        nb_err(NB_ERR_ARG, "nb_dist_new: rank %d of %d processes", rank, size);
        return NULL;
    }
    nb_dist *d = calloc(1, sizeof *d);
    if (!d) {
        nb_err(NB_ERR_NOMEM, "nb_dist_new: out of memory");
        return NULL;
    }
    *d = (nb_dist){.ops = *ops, .ctx = ctx, .rank = rank, .size = size};
    return d;
}

void nb_dist_free(nb_dist *d) {
    if (!d) return;
    if (d->ops.free_ctx) d->ops.free_ctx(d->ctx);
    free(d->send);
    free(d->recv);
    free(d);
}

int nb_dist_rank(const nb_dist *d) { return d ? d->rank : 0; }
int nb_dist_size(const nb_dist *d) { return d ? d->size : 1; }

/* Both scratch buffers of at least `bytes`. */
static nb_status reserve(nb_dist *d, size_t bytes) {
    if (bytes <= d->cap) return NB_OK;
    void *s = realloc(d->send, bytes);
    if (s) d->send = s;
    void *r = s ? realloc(d->recv, bytes) : NULL;
    if (r) d->recv = r;
    if (!s || !r) return nb_err(NB_ERR_NOMEM, "nb_dist: out of memory for %zu bytes", bytes);
    d->cap = bytes;
    return NB_OK;
}

static nb_status transport_failed(nb_status s, const char *what) {
    return nb_err_prefix(s == NB_OK ? NB_ERR_IO : s, "nb_dist: %s", what);
}

/* v[0..n) and, behind them, `extra` (n + 1 values: *extra receives its
 * sum), summed in rank order. */
static nb_status ordered_sum(nb_dist *d, nb_real *v, size_t n, double *extra) {
    const size_t p = (size_t)d->size, unit = ((size_t)1 << 20) / sizeof *v;
    const size_t len = n + (extra != NULL);
    size_t block = len / p + (len % p != 0);
    if (block * sizeof *v > (size_t)1 << 30) /* whole MiB: see dist_mpi.c */
        block = (block + unit - 1) / unit * unit;
    const size_t bytes = block * sizeof *v;
    nb_status s = reserve(d, p * bytes);
    if (s != NB_OK) return s;
    nb_real *send = d->send, *recv = d->recv;
    memcpy(send, v, n * sizeof *v);
    memset(send + n, 0, (p * block - n) * sizeof *v); /* the last block's padding */
    if (extra) send[n] = (nb_real)*extra;
    if ((s = d->ops.alltoall(d->ctx, send, recv, bytes)) != NB_OK)
        return transport_failed(s, "all-to-all of the gradients");
    /* block `rank` of every process, added in rank order */
    for (size_t k = 0; k < block; k++) {
        double acc = (double)recv[k];
        for (size_t j = 1; j < p; j++) acc += (double)recv[j * block + k];
        send[k] = (nb_real)acc;
    }
    if ((s = d->ops.allgather(d->ctx, send, recv, bytes)) != NB_OK)
        return transport_failed(s, "all-gather of the summed gradients");
    memcpy(v, recv, n * sizeof *v);
    if (extra) *extra = (double)recv[n];
    return NB_OK;
}

nb_status nb_dist_sum(nb_dist *d, nb_real *v, size_t n) {
    if (!d) return nb_err(NB_ERR_ARG, "nb_dist_sum: no group");
    return d->size == 1 || n == 0 ? NB_OK : ordered_sum(d, v, n, NULL);
}

nb_status nb__dist_mean(nb_dist *d, nb_real *v, size_t n, double w) {
    if (d->size == 1) return NB_OK;
    for (size_t k = 0; k < n; k++) v[k] *= (nb_real)w;
    nb_status s = ordered_sum(d, v, n, &w);
    if (s != NB_OK) return s;
    const nb_real inv = (nb_real)(1.0 / w); /* w: the total weight now */
    for (size_t k = 0; k < n; k++) v[k] *= inv;
    return NB_OK;
}

nb_status nb_dist_sum_f64(nb_dist *d, double *v, size_t n) {
    if (!d) return nb_err(NB_ERR_ARG, "nb_dist_sum_f64: no group");
    if (d->size == 1 || n == 0) return NB_OK;
    const size_t p = (size_t)d->size;
    nb_status s = reserve(d, p * n * sizeof *v);
    if (s != NB_OK) return s;
    double *all = d->recv;
    if ((s = d->ops.allgather(d->ctx, v, all, n * sizeof *v)) != NB_OK)
        return transport_failed(s, "all-gather of the statistics");
    for (size_t k = 0; k < n; k++) {
        double acc = all[k];
        for (size_t j = 1; j < p; j++) acc += all[j * n + k];
        v[k] = acc;
    }
    return NB_OK;
}

nb_status nb_dist_broadcast(nb_dist *d, void *buf, size_t bytes) {
    if (!d) return nb_err(NB_ERR_ARG, "nb_dist_broadcast: no group");
    if (d->size == 1 || bytes == 0) return NB_OK;
    nb_status s = d->ops.broadcast(d->ctx, buf, bytes);
    return s == NB_OK ? NB_OK : transport_failed(s, "broadcast");
}

/* Every process holds the same sizes: checked on all of them, so that all
 * fail together rather than wait for each other forever. */
static nb_status check_sizes(nb_dist *d, nb_graph *g, nb_optim *opt) {
    size_t opt_n = 0;
    if (opt) nb_optim_state(opt, &opt_n);
    double mine[3] = {(double)nb_param_count(g), (double)nb_buffer_count(g), (double)opt_n};
    double root[3];
    memcpy(root, mine, sizeof root);
    nb_status s = nb_dist_broadcast(d, root, sizeof root);
    if (s != NB_OK) return s;
    double differs = memcmp(root, mine, sizeof root) != 0;
    if ((s = nb_dist_sum_f64(d, &differs, 1)) != NB_OK) return s;
    if (differs == 0) return NB_OK;
    return nb_err(NB_ERR_ARG, "nb_dist_broadcast_state: process %d has %.0f parameters, %.0f "
                  "buffers and %.0f optimiser values, process 0 %.0f, %.0f and %.0f (or another "
                  "process differs): every process must build the same model and optimiser",
                  d->rank, mine[0], mine[1], mine[2], root[0], root[1], root[2]);
}

nb_status nb_dist_broadcast_state(nb_dist *d, nb_graph *g, nb_optim *opt) {
    if (!d || !g) return nb_err(NB_ERR_ARG, "nb_dist_broadcast_state: group or graph is NULL");
    nb_status s = check_sizes(d, g, opt);
    if (s == NB_OK) s = nb_dist_broadcast(d, nb_params(g), nb_param_count(g) * sizeof(nb_real));
    for (int i = 0; s == NB_OK && i < nb_buffer_count(g); i++) {
        nb_node b = nb_buffer_tensor(g, i);
        s = nb_dist_broadcast(d, nb_value(g, b), nb_node_numel(g, b) * sizeof(nb_real));
    }
    if (s == NB_OK) s = nb_dist_broadcast(d, nb_graph_rng(g), sizeof(nb_rng));
    if (s == NB_OK && opt) {
        size_t n;
        nb_real *state = nb_optim_state(opt, &n);
        long steps = nb_optim_steps(opt);
        s = nb_dist_broadcast(d, state, n * sizeof *state);
        if (s == NB_OK) s = nb_dist_broadcast(d, &steps, sizeof steps);
        if (s == NB_OK) s = nb_optim_set_steps(opt, steps);
    }
    return s == NB_OK ? NB_OK : nb_err_prefix(s, "nb_dist_broadcast_state");
}

static nb_status sync_sum(void *ctx, double *v, size_t n) { return nb_dist_sum_f64(ctx, v, n); }

nb_status nb_dist_sync_batch_norm(nb_dist *d, nb_graph *g, int on) {
    if (!g) return nb_err(NB_ERR_ARG, "nb_dist_sync_batch_norm: graph is NULL");
    const int sync = on && nb_dist_size(d) > 1;
    g->sync_sum = sync ? sync_sum : NULL;
    g->sync_ctx = sync ? d : NULL;
    return NB_OK;
}
