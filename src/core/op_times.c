/* Per-op timing (nb_graph_time_ops): wall-clock seconds of each node's
 * forward and backward, summed over the passes since timing was switched on.
 * Off, it costs two calls per op that find the totals NULL. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdlib.h>
#include <time.h>

nb_status nb_graph_time_ops(nb_graph *g, int on) {
    if (!g) return nb_err(NB_ERR_ARG, "nb_graph_time_ops: graph is NULL");
    free(g->op_seconds);
    g->op_seconds = NULL;
    g->op_seconds_nodes = 0;
    if (!on || g->n_nodes == 0) return NB_OK;
    g->op_seconds = calloc((size_t)g->n_nodes * 2, sizeof *g->op_seconds);
    if (!g->op_seconds) return nb_err(NB_ERR_NOMEM, "nb_graph_time_ops: out of memory");
    g->op_seconds_nodes = g->n_nodes;
    return NB_OK;
}

nb_status nb_node_times(const nb_graph *g, nb_node n, double *forward_s, double *backward_s) {
    if (!g) return nb_err(NB_ERR_ARG, "nb_node_times: graph is NULL");
    if (!g->op_seconds)
        return nb_err(NB_ERR_ARG, "nb_node_times: timing is off (nb_graph_time_ops)");
    if (n < 0 || n >= g->op_seconds_nodes)
        return nb_err(NB_ERR_ARG, "nb_node_times: node %d was not in the graph when timing "
                      "started (%d nodes)", n, g->op_seconds_nodes);
    if (forward_s) *forward_s = g->op_seconds[2 * n];
    if (backward_s) *backward_s = g->op_seconds[2 * n + 1];
    return NB_OK;
}

double nb__op_clock(const nb_graph *g) {
    if (!g->op_seconds) return 0;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void nb__op_timed(nb_graph *g, int node, int backward, double started) {
    if (!g->op_seconds || node >= g->op_seconds_nodes) return;
    g->op_seconds[2 * node + (backward != 0)] += nb__op_clock(g) - started;
}
