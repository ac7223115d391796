/* Image folders and image files as command-line data (folder:DIR, or a
 * path ending in .png, .jpg or .jpeg). */
#ifndef NB_FOLDER_SOURCE_H
#define NB_FOLDER_SOURCE_H

#include "nabla.h"

/* Images are prepared for model m's input (C H W, C 1 or 3); a command calls
 * this after loading its model.  skip_bad: skip images that do not decode
 * (counted on stderr); quiet: no progress. */
void folder_source_setup(const nb_model *m, int skip_bad, int quiet);

/* Does spec name one image file (by its extension)? */
int folder_source_is_image(const char *spec);

/* Decode the images of path (a folder or one image file) into out. */
nb_status folder_source_load(const char *path, nb_data *out);

#endif
