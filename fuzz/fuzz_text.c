/* libFuzzer target for text data (nb_text_parse).  The first byte picks the
 * layout and its numbers (lines with a context or padded, a stream with a
 * window and a stride), a validation fraction, and whether a small given
 * vocabulary encodes the text; the whole input, first byte included, is the
 * text.  Every sample must hold ids of the vocabulary, targets ids or the
 * ignored padding. */
#include "nabla.h"

#include <stdint.h>
#include <string.h>

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_part(const nb_data *d) {
    REQUIRE(d->n > 0 && d->x_real && d->y && d->n_classes > 0 && d->class_names);
    for (size_t k = 0; k < d->n * d->sample_size; k++)
        REQUIRE(d->x_real[k] >= 0 && d->x_real[k] < d->n_classes);
    for (size_t k = 0; k < d->n * d->y_size; k++)
        REQUIRE((d->y[k] >= 0 && d->y[k] < d->n_classes) || d->y[k] == NB_TEXT_IGNORE);
    for (int k = 0; k < d->n_classes; k++) REQUIRE(d->class_names[k][0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char *vocab[] = {"\n", " ", "a", "b", "c", "\xc3\xa9"};
    unsigned flags = size ? data[0] : 0;
    nb_text_opts o = {.kind = flags & 1 ? NB_TEXT_STREAM : NB_TEXT_LINES};
    o.context = (int)(flags >> 1 & 3) + (o.kind == NB_TEXT_STREAM);
    o.stride = (int)(flags >> 3 & 1) + 1;
    if (flags & 0x10) o.val_fraction = 0.3;
    o.seed = flags;
    if (flags & 0x20) {
        o.vocab = o.kind == NB_TEXT_LINES ? vocab : vocab + 1;
        o.vocab_size = o.kind == NB_TEXT_LINES ? 6 : 5;
    }
    if ((flags & 0x40) && o.kind == NB_TEXT_LINES && o.context == 0) o.length = 8;
    nb_data train, val;
    nb_status s = nb_text_parse((const char *)data, size, "fuzz.txt", &o, &train, &val);
    if (s != NB_OK) {
        REQUIRE(train.x_real == NULL && train.n == 0 && val.x_real == NULL);
        REQUIRE(strstr(nb_last_error(), "fuzz.txt") != NULL); /* errors name the input */
        return 0;
    }
    check_part(&train);
    if (o.val_fraction > 0) {
        check_part(&val);
        REQUIRE(val.n_classes == train.n_classes);
    }
    nb_data_free(&train);
    nb_data_free(&val);
    return 0;
}
