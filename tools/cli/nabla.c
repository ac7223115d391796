/* nabla: train, evaluate and inspect models described in text files. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"train", cmd_train, "train a model on data, with checkpoints and resume"},
    {"eval", cmd_eval, "loss and accuracy of saved weights on data"},
    {"predict", cmd_predict, "class and probabilities for CSV rows or IDX images"},
    {"generate", cmd_generate, "sample text from a character model"},
    {"export", cmd_export, "the model with its weights as an ONNX file"},
    {"import", cmd_import, "an ONNX file as a model file and weights"},
    {"info", cmd_info, "layers, shapes, parameter count and FLOPs of a model"},
    {"gradcheck", cmd_gradcheck, "compare a model's gradients with finite differences"},
    {"lr-find", cmd_lr_find, "learning-rate range test: loss against rate, a suggestion"},
    {"tune", cmd_tune, "hyperparameter search: random search with successive halving"},
    {"experiment", cmd_experiment, "run and plot one of the course's experiments"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: nabla COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'nabla COMMAND --help' describes each command.  nabla %s\n", NB_VERSION);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("nabla %s (matrix kernels: %s, %d threads)\n", NB_VERSION, nb_blas_core(),
               nb_threads());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc, argv);
    fprintf(stderr, "nabla: unknown command '%s' (commands: train, eval, predict, generate, info, "
            "gradcheck, lr-find, tune, experiment; see 'nabla --help')\n", argv[1]);
    return 2;
}
