/*
 * regression — linear regression two ways: gradient descent with nabla, and
 * the closed-form least-squares solution (the normal equations).
 *
 * Data: 200 points y = X w + b + noise with 3 features (seeded, so every run
 * is the same).  Model: one dense layer y = x W^T + b, loss MSE, trained by
 * full-batch gradient descent with nb_fit.  Least squares minimises the same
 * loss exactly, so the two coefficient vectors must agree; we check to 1e-4.
 *
 * Exit code 0 when they agree, 1 otherwise.
 */
#include <nabla.h>

#include <math.h>
#include <stdio.h>

enum { N = 200, F = 3, P = F + 1 }; /* samples, features, coefficients (with b) */

/* Solve A z = r for a symmetric positive definite P x P matrix A by Cholesky
 * (A = L L^T, then two triangular solves).  Returns 0 if A is not SPD. */
static int cholesky_solve(double A[P][P], const double r[P], double z[P]) {
    double L[P][P] = {{0}};
    for (int i = 0; i < P; i++) {
        for (int j = 0; j <= i; j++) {
            double s = A[i][j];
            for (int k = 0; k < j; k++) s -= L[i][k] * L[j][k];
            if (i == j) {
                if (s <= 0) return 0;
                L[i][i] = sqrt(s);
            } else {
                L[i][j] = s / L[j][j];
            }
        }
    }
    double t[P];
    for (int i = 0; i < P; i++) { /* L t = r */
        double s = r[i];
        for (int k = 0; k < i; k++) s -= L[i][k] * t[k];
        t[i] = s / L[i][i];
    }
    for (int i = P - 1; i >= 0; i--) { /* L^T z = t */
        double s = t[i];
        for (int k = i + 1; k < P; k++) s -= L[k][i] * z[k];
        z[i] = s / L[i][i];
    }
    return 1;
}

/* Least squares with an intercept: minimise sum (y - x.w - b)^2 through the
 * normal equations  (A^T A) z = A^T y  with A = [X 1], z = [w; b]. */
static int least_squares(const nb_real *x, const nb_real *y, double z[P]) {
    double AtA[P][P] = {{0}}, Aty[P] = {0};
    for (int m = 0; m < N; m++) {
        double a[P];
        for (int j = 0; j < F; j++) a[j] = x[m * F + j];
        a[F] = 1;
        for (int i = 0; i < P; i++) {
            Aty[i] += a[i] * y[m];
            for (int j = 0; j < P; j++) AtA[i][j] += a[i] * a[j];
        }
    }
    return cholesky_solve(AtA, Aty, z);
}

/* Called by nb_fit after every epoch: print now and then, and stop once the
 * gradient (of the last step, still in the graph) is tiny: at the minimum of
 * the MSE the gradient is zero, and the distance to the minimum is about
 * |gradient| / (2 * smallest eigenvalue of X^T X / N), here about |gradient|/2. */
static int report(const nb_epoch_stats *s, void *user) {
    nb_graph *g = user;
    const nb_real *grad = nb_grads(g);
    double sq = 0;
    for (size_t k = 0; k < nb_param_count(g); k++) sq += (double)grad[k] * grad[k];
    int converged = sqrt(sq) < 1e-5;
    if (s->epoch == 1 || s->epoch % 20 == 0 || converged)
        printf("    epoch %4d  loss %.8f  |gradient| %.2e%s\n", s->epoch, s->train_loss,
               sqrt(sq), converged ? "  converged" : "");
    return converged;
}

int main(void) {
    const double w_true[F] = {2.0, -3.0, 0.5}, b_true = 1.0, noise = 0.1;
    static nb_real x[N * F], y[N];
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    for (int m = 0; m < N; m++) {
        double t = b_true + noise * nb_rng_normal(&rng);
        for (int j = 0; j < F; j++) {
            x[m * F + j] = (nb_real)nb_rng_normal(&rng);
            t += w_true[j] * x[m * F + j];
        }
        y[m] = (nb_real)t;
    }
    printf("Linear regression with nabla %s: %d points, %d features, noise std %.2f\n"
           "true coefficients w = [%.3f, %.3f, %.3f], b = %.3f\n\n", NB_VERSION, N, F, noise,
           w_true[0], w_true[1], w_true[2], b_true);

    /* 1. Closed form. */
    double z[P];
    if (!least_squares(x, y, z)) {
        printf("normal equations are singular\n");
        return 1;
    }

    /* 2. Gradient descent: one dense layer, MSE, full-batch SGD with nb_fit. */
    int in = F, one = 1;
    nb_graph *g = nb_graph_new();
    nb_node xi = nb_input(g, "x", 1, &in);
    nb_node yi = nb_input(g, "y", 1, &one);
    nb_node pred = nb_dense(g, xi, 1, "linear", NULL);
    nb_node loss = nb_mse_loss(g, pred, yi);
    if (nb_graph_status(g) != NB_OK) {
        printf("building the model failed: %s\n", nb_last_error());
        return 1;
    }
    nb_graph_init(g, &rng);
    nb_optim_config sgd = nb_optim_defaults(NB_OPT_SGD);
    sgd.lr = 0.1;
    nb_optim *opt = nb_optim_new(&sgd, nb_param_count(g));
    nb_data data;
    if (nb_data_from_reals(x, y, N, F, 1, &data) != NB_OK || !opt) {
        printf("out of memory: %s\n", nb_last_error());
        return 1;
    }
    nb_fit_config cfg = nb_fit_defaults(xi, yi, loss, NB_NONE);
    cfg.optimizer = opt;
    cfg.epochs = 1000;  /* at most; report() stops earlier */
    cfg.batch_size = N; /* full batch: plain gradient descent */
    cfg.on_epoch = report;
    cfg.user = g;
    nb_epoch_stats last;
    printf("gradient descent (SGD lr %.2f, full batch):\n", sgd.lr);
    if (nb_fit(g, &cfg, &data, NULL, &last) != NB_OK) {
        printf("training failed: %s\n", nb_last_error());
        return 1;
    }
    double final_loss;
    nb_evaluate(g, xi, yi, loss, NB_NONE, &data, N, &final_loss, NULL);
    const nb_real *W = nb_value(g, nb_find(g, "linear.weight"));
    const nb_real *B = nb_value(g, nb_find(g, "linear.bias"));
    double gd[P] = {W[0], W[1], W[2], B[0]};

    printf("\n              w1          w2          w3          b\n");
    printf("gradient   ");
    for (int i = 0; i < P; i++) printf(" %11.7f", gd[i]);
    printf("\nclosed form");
    for (int i = 0; i < P; i++) printf(" %11.7f", z[i]);
    double maxdiff = 0;
    for (int i = 0; i < P; i++) maxdiff = fmax(maxdiff, fabs(gd[i] - z[i]));
    int ok = maxdiff <= 1e-4;
    printf("\n\nfinal MSE %.8f after %ld steps\n", final_loss, last.step);
    printf("max |gradient - closed form| = %.2e  %s\n", maxdiff,
           ok ? "[agree to 1e-4]" : "[DO NOT AGREE to 1e-4]");
    nb_data_free(&data);
    nb_optim_free(opt);
    nb_graph_free(g);
    return ok ? 0 : 1;
}
