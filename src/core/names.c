/* The node names of a graph, in a hash table, so that nb_find and the
 * unique-name check of every new parameter cost O(1) rather than a scan of
 * all nodes (a model of many layers would build in quadratic time).
 *
 * Open addressing over node handles: each used slot holds the first node
 * (lowest handle) with a name and how many nodes share it.  Every name is
 * written through nb__set_name, which keeps the table exact.  If the table
 * cannot grow (out of memory), lookups fall back to the scan. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EMPTY = -1, DELETED = -2 };

static size_t hash(const char *s) {
    size_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The slot of name, or of the first free slot where it would go (-1: none). */
static long find_slot(const nb_graph *g, const char *name, int *found) {
    *found = 0;
    if (!g->name_cap) return -1;
    size_t mask = (size_t)g->name_cap - 1, i = hash(name) & mask;
    long free_slot = -1;
    for (int probes = 0; probes < g->name_cap; probes++, i = (i + 1) & mask) {
        int h = g->name_slot[i];
        if (h == EMPTY) return free_slot >= 0 ? free_slot : (long)i;
        if (h == DELETED) {
            if (free_slot < 0) free_slot = (long)i;
        } else if (strcmp(g->nodes[h].name, name) == 0) {
            *found = 1;
            return (long)i;
        }
    }
    return free_slot;
}

static void insert(nb_graph *g, int h) {
    int found;
    long i = find_slot(g, g->nodes[h].name, &found);
    if (found) {
        g->name_count[i]++;
        if (h < g->name_slot[i]) g->name_slot[i] = h;
    } else {
        if (g->name_slot[i] == EMPTY) g->name_used++;
        g->name_slot[i] = h;
        g->name_count[i] = 1;
    }
}

/* Room for one more name: grow (or clean out deleted slots) and reinsert
 * every named node in handle order.  0 if out of memory. */
static int reserve(nb_graph *g) {
    if (g->name_broken) return 0;
    if ((size_t)(g->name_used + 1) * 2 <= (size_t)g->name_cap) return 1;
    int cap = g->name_cap ? g->name_cap : 64;
    while (cap < 4 * (g->n_nodes + 1)) cap *= 2;
    int *slot = malloc((size_t)cap * sizeof *slot), *count = malloc((size_t)cap * sizeof *count);
    if (!slot || !count) {
        free(slot);
        free(count);
        g->name_broken = 1;
        return 0;
    }
    free(g->name_slot);
    free(g->name_count);
    g->name_slot = slot;
    g->name_count = count;
    g->name_cap = cap;
    g->name_used = 0;
    for (int i = 0; i < cap; i++) slot[i] = EMPTY;
    for (int h = 0; h < g->n_nodes; h++)
        if (g->nodes[h].name[0]) insert(g, h);
    return 1;
}

static void remove_name(nb_graph *g, int h) {
    int found;
    long i = find_slot(g, g->nodes[h].name, &found);
    if (!found) return;
    if (--g->name_count[i] == 0) {
        g->name_slot[i] = DELETED;
        return;
    }
    if (g->name_slot[i] != h) return;
    /* the first node of a shared name is renamed: the next one takes over */
    for (int k = h + 1; k < g->n_nodes; k++)
        if (strcmp(g->nodes[k].name, g->nodes[h].name) == 0) {
            g->name_slot[i] = k;
            return;
        }
}

void nb__set_name(nb_graph *g, int h, const char *name) {
    nb_node_t *n = &g->nodes[h];
    if (n->name[0] && !g->name_broken) remove_name(g, h);
    n->name[0] = '\0'; /* out of the table while it may be rebuilt */
    int indexed = name && name[0] && reserve(g);
    snprintf(n->name, sizeof n->name, "%s", name ? name : "");
    if (indexed) insert(g, h);
}

nb_node nb__find_name(const nb_graph *g, const char *name) {
    if (g->name_broken || strlen(name) >= sizeof g->nodes[0].name) {
        for (int i = 0; i < g->n_nodes; i++)
            if (strcmp(g->nodes[i].name, name) == 0) return i;
        return NB_NONE;
    }
    int found;
    long i = find_slot(g, name, &found);
    return found ? g->name_slot[i] : NB_NONE;
}

void nb__free_names(nb_graph *g) {
    free(g->name_slot);
    free(g->name_count);
}
