/* quickstart: fit y = sin(x) with a 1-32-1 tanh network, then predict.
 * The README shows this program; it is built by `make` like every example. */
#include <math.h>
#include <nabla.h>
#include <stdio.h>

int main(void) {
    enum { N = 256 };
    float x[N], y[N];
    for (int i = 0; i < N; i++) {
        x[i] = -3.0f + 6.0f * (float)i / (N - 1);
        y[i] = sinf(x[i]);
    }

    /* The model: a graph built once. Inputs have a batch dimension chosen at run time. */
    nb_graph *g = nb_graph_new();
    int one = 1;
    nb_node in = nb_input(g, "x", 1, &one);
    nb_node target = nb_input(g, "y", 1, &one);
    nb_node hidden = nb_tanh(g, nb_dense(g, in, 32, "fc1", NULL));
    nb_node out = nb_dense(g, hidden, 1, "fc2", NULL);
    nb_node loss = nb_mse_loss(g, out, target);
    if (nb_graph_status(g) != NB_OK) { /* one check covers every call above */
        fprintf(stderr, "model: %s\n", nb_last_error());
        return 1;
    }

    nb_rng rng;
    nb_rng_seed(&rng, 42); /* explicit seed: the same run every time */
    nb_graph_init(g, &rng);

    nb_optim_config adam = nb_optim_defaults(NB_OPT_ADAM);
    adam.lr = 0.01;
    nb_optim *opt = nb_optim_new(&adam, nb_param_count(g));
    nb_data data;
    nb_data_from_reals(x, y, N, 1, 1, &data); /* N samples of 1 input and 1 target */

    nb_fit_config cfg = nb_fit_defaults(in, target, loss, NB_NONE);
    cfg.epochs = 300;
    cfg.batch_size = 32;
    cfg.optimizer = opt;
    nb_epoch_stats last;
    if (nb_fit(g, &cfg, &data, NULL, &last) != NB_OK) {
        fprintf(stderr, "training: %s\n", nb_last_error());
        return 1;
    }
    printf("training MSE after %d epochs: %.5f\n", last.epoch, last.train_loss);

    /* Predict one point with the same graph (batch size 1). */
    float q = 1.0f;
    nb_set_input(g, in, &q, 1);
    nb_forward(g, out);
    printf("net(1.0) = %.4f, sin(1.0) = %.4f\n", nb_value(g, out)[0], sinf(q));
    nb_data_free(&data);
    nb_optim_free(opt);
    nb_graph_free(g);
    return last.train_loss < 1e-3 ? 0 : 1;
}
