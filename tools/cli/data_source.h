/* Where the command line's data come from (--data, --test), and the input
 * preprocessing that travels with a model's weights. */
#ifndef NB_DATA_SOURCE_H
#define NB_DATA_SOURCE_H

#include "nabla.h"

/* Load SPEC: "fashion-mnist" (split "train" or "test"), "idx:IMAGES,LABELS",
 * "idx:IMAGES" (no labels), or "csv:PATH[,label=COLUMN][,header=yes|no]" with
 * COLUMN a header name or a 0-based index (default: the last column; with
 * label=none every column is a feature), "folder:DIR" or an image file
 * (folder_source.h: prints decoding progress on stderr).  Otherwise prints
 * nothing; on error returns a status with nb_last_error() set. */
nb_status data_load(const char *spec, const char *split, nb_data *out);

/* Does spec name a data set that has its own test split? */
int data_has_test_split(const char *spec);

/* How inputs are turned into reals before the model sees them. */
typedef struct preprocess {
    int unit;             /* bytes divided by 255                               */
    size_t features;      /* standardisation: number of features (0: none)     */
    double *mean, *inv_std;
    int n_classes;        /* class names of the training labels (0: none)       */
    char **class_names;
    char *meta[3];        /* metadata strings made by preprocess_to_meta        */
} preprocess;

/* From training data, after nb_data_scale_unit / nb_data_standardize. */
nb_status preprocess_from_data(const nb_data *d, preprocess *p);
/* Apply to data loaded for evaluation or prediction. */
nb_status preprocess_apply(const preprocess *p, nb_data *d);
/* As metadata key/value pairs (strings owned by p's buffer; valid until
 * preprocess_free).  Returns the number of pairs written to kv (at most 4). */
int preprocess_to_meta(preprocess *p, nb_kv *kv);
/* From a weights or checkpoint file's metadata (absent keys: no preprocessing). */
nb_status preprocess_from_file(const char *path, preprocess *p);
void preprocess_free(preprocess *p);

#endif
