/* Where the command line's data come from (--data, --test), and the input
 * preprocessing that travels with a model's weights. */
#ifndef NB_DATA_SOURCE_H
#define NB_DATA_SOURCE_H

#include "nabla.h"

/* Load SPEC: "fashion-mnist" (split "train" or "test"), "idx:IMAGES,LABELS",
 * "npy:X.npy,Y.npy" (either without labels: "idx:IMAGES", "npy:X.npy"; both
 * with ",layout=hwc" for channels-last samples, transposed to C H W),
 * "csv:PATH[,label=COLUMN][,header=yes|no]" with COLUMN a header name or a
 * 0-based index (default: the last column; with label=none every column is a
 * feature), "folder:DIR" or an image file (folder_source.h: prints decoding
 * progress on stderr).  Without a prefix, a file's name says which: .csv
 * (.csv.gz), .npy, -ubyte or .idx (.gz).  Text: "lines:FILE[,context=K]
 * [,length=T]" and "text:FILE,context=T[,stride=S]" (nb_text_load).  Otherwise prints nothing; on error
 * returns a status with nb_last_error() set. */
nb_status data_load(const char *spec, const char *split, nb_data *out);

/* data_load for data to evaluate a trained model on: every label must be one
 * of its n_classes classes (classes: their names, matched by name; NULL: class
 * numbers), and is numbered as in training.  n_classes 0: data_load. */
nb_status data_load_classes(const char *spec, const char *split, char *const *classes,
                            int n_classes, nb_data *out);

/* Is spec text (lines:FILE..., text:FILE...)?  Text data is character ids:
 * never standardised, and its vocabulary (the class names) encodes the
 * validation and test data and travels with the weights. */
int data_is_text(const char *spec);

/* The length that lines: data without context= or length= pad every line
 * to: the size of the model's input (0: the longest line + 1). */
void data_text_default_length(size_t n);

/* Text data with a held-out fraction: whole lines (lines:) or one span of
 * the stream (text:) chosen by seed (vocab: as data_load_classes). */
nb_status data_load_split(const char *spec, char *const *vocab, int n_vocab, double val_fraction,
                          uint64_t seed, nb_data *train, nb_data *val);

/* Is spec a CSV file (csv:FILE, or FILE.csv)? */
int data_is_csv(const char *spec);

/* Do d's samples have the shape of the model's input?  Flat samples or a
 * flat input match any shape of the same size, and dimensions of size 1 do
 * not count; channels-last samples for a C H W input are an error that
 * suggests layout=hwc. */
nb_status data_check_shape(const nb_data *d, const char *spec, const nb_graph *g, nb_node input);

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
