/* libFuzzer target for the image decoders (nb_image_parse: libpng and
 * libjpeg behind nabla's error handling and size bounds), followed by the
 * conversion and resizing a folder load does. */
#include "nabla.h"

#include <stdint.h>
#include <string.h>

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nb_image im;
    nb_status s = nb_image_parse(data, size, "fuzz.img", &im);
    if (s != NB_OK) {
        REQUIRE(im.pix == NULL);
        REQUIRE(strstr(nb_last_error(), "fuzz.img") != NULL);
        return 0;
    }
    REQUIRE(im.pix && im.h > 0 && im.w > 0 && (im.c == 1 || im.c == 3));
    uint8_t chw[3 * 9 * 7];
    for (int c = 1; c <= 3; c += 2) {
        REQUIRE(nb_image_to_chw(&im, c, 9, 7, chw) == NB_OK);
        REQUIRE(nb_image_to_chw(&im, c, im.h < 40 ? im.h : 40, 3, NULL) == NB_ERR_ARG);
    }
    nb_image_free(&im);
    return 0;
}
