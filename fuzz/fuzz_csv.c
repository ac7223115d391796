/* libFuzzer target for the CSV parser (nb_csv_parse) and for turning the
 * table into training data.  The first byte also picks the options, so one
 * input exercises header modes, delimiters, label choices and small limits;
 * the whole input, first byte included, is the CSV text. */
#include "nabla.h"

#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_table(const nb_csv_data *d) {
    REQUIRE(d->rows > 0 && d->features > 0 && d->x && d->y);
    for (size_t k = 0; k < d->rows * (size_t)d->features; k++) REQUIRE(isfinite(d->x[k]));
    for (size_t i = 0; i < d->rows; i++) {
        REQUIRE(isfinite(d->y[i]));
        if (d->n_classes) REQUIRE(d->y[i] >= 0 && d->y[i] < d->n_classes);
    }
    if (d->feature_names) {
        REQUIRE(d->label_name);
        for (int j = 0; j < d->features; j++) REQUIRE(d->feature_names[j]);
    }
    for (int k = 1; k < d->n_classes; k++)
        REQUIRE(strcmp(d->class_names[k - 1], d->class_names[k]) < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nb_csv_opts o = nb_csv_defaults();
    unsigned flags = size ? data[0] : 0;
    o.header = (nb_csv_header)(flags % 3);
    if (flags & 0x04) o.delimiter = ';';
    if (flags & 0x08) o.label_index = 0;
    if (flags & 0x10) {
        o.max_line_bytes = 64;
        o.max_columns = 8;
        o.max_rows = 16;
    }
    if ((flags & 0x20) && o.header != NB_CSV_HEADER_NO) o.label_name = "label";
    nb_csv_data d;
    nb_status s = nb_csv_parse((const char *)data, size, "fuzz.csv", &o, &d);
    if (s != NB_OK) {
        REQUIRE(d.x == NULL && d.rows == 0);
        REQUIRE(strstr(nb_last_error(), "fuzz.csv") != NULL); /* errors name the input */
        return 0;
    }
    check_table(&d);
    /* the same table through the training-data path */
    nb_data all, train, val;
    REQUIRE(nb_data_from_csv(&d, &all) == NB_OK);
    if (all.n >= 2 && nb_data_split(&all, 0.5, flags, &train, &val) == NB_OK) {
        REQUIRE(nb_data_standardize(&train, &val, NULL) == NB_OK);
        /* NB_ERR_NUMERIC is allowed: a validation value far outside a tiny
         * training spread does not fit in a float after standardisation */
        nb_real *x = malloc(sizeof *x * (val.n * val.sample_size + 1));
        REQUIRE(x != NULL);
        nb_status v = nb_data_batch(&val, NULL, 0, val.n, x, NULL);
        REQUIRE(v == NB_OK || v == NB_ERR_NUMERIC);
        for (size_t k = 0; v == NB_OK && k < val.n * val.sample_size; k++) REQUIRE(isfinite(x[k]));
        free(x);
        nb_data_free(&train);
        nb_data_free(&val);
    }
    nb_data_free(&all);
    nb_csv_free(&d);
    return 0;
}
