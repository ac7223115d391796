/* The numbers behind some of the course experiments, for the tests
 * (tests/test_experiments.c) to check directly.  Each *_run function does
 * everything its exp_NAME does (summary, plot) and also fills the result. */
#ifndef NB_EXP_COURSE_H
#define NB_EXP_COURSE_H

#include "experiment.h"

/* ------------------------------------------------------------------ init */

enum { INIT_KINDS = 7, INIT_ACTS = 2, INIT_LAYERS = 20 };
enum { INIT_ZEROS, INIT_SMALL, INIT_LARGE, INIT_XAVIER, INIT_LECUN, INIT_HE, INIT_XAVIER_GAIN };
enum { ACT_TANH, ACT_RELU };
extern const char *const init_labels[INIT_KINDS];

typedef struct init_result {
    int width, batch;
    /* per activation, initialiser and layer l = 1..INIT_LAYERS (index l-1):   */
    double fwd[INIT_ACTS][INIT_KINDS][INIT_LAYERS]; /* std of h_l = act(z_l)     */
    double bwd[INIT_ACTS][INIT_KINDS][INIT_LAYERS]; /* std of dL/dh_l            */
    double lin[INIT_ACTS][INIT_KINDS][INIT_LAYERS]; /* rms(z_l) / rms(h_{l-1}):
                                                       the linear map alone; NaN for 0/0 */
    /* the same two stds predicted for infinite width (mean-field recursion) */
    double pred_fwd[INIT_ACTS][INIT_KINDS][INIT_LAYERS];
    double pred_bwd[INIT_ACTS][INIT_KINDS][INIT_LAYERS];
    /* the symmetry problem: largest difference between two hidden units'
     * incoming weights (layers 1 and 2) after training, and the final loss */
    double sym_diff_const, sym_diff_random;
    double sym_loss_const, sym_loss_random;
} init_result;

int exp_init_run(const exp_ctx *ctx, init_result *r);
/* max/min of a std over the layers; 0 when some std is exactly 0 */
double init_spread(const double *std_per_layer);

/* ----------------------------------------------------------------- depth */

enum { DEPTH_CASES = 4, DEPTH_MAX_POINTS = 32 };
enum { DEPTH_SIGMOID_PLAIN, DEPTH_SIGMOID_SKIP, DEPTH_RELU_PLAIN, DEPTH_RELU_SKIP };
extern const char *const depth_labels[DEPTH_CASES];

typedef struct depth_result {
    int n_depths;
    int depth[DEPTH_MAX_POINTS];
    /* geometric mean over the seeds of ||dL/dW_1|| for each case and depth */
    double norm[DEPTH_CASES][DEPTH_MAX_POINTS];
    double rate[DEPTH_CASES];   /* fitted factor per added layer: exp(slope of ln norm) */
} depth_result;

int exp_depth_run(const exp_ctx *ctx, depth_result *r);

/* ------------------------------------------------------------------ bptt */

enum { BPTT_CASES = 5, BPTT_STEPS = 50 };
enum { BPTT_RNN, BPTT_GRU, BPTT_LSTM, BPTT_LSTM_F1, BPTT_LSTM_F3 };
extern const char *const bptt_labels[BPTT_CASES];

typedef struct bptt_result {
    int hidden, inputs, steps;
    /* geometric mean over the seeds of ||dL/dx_{T-1-k}||, k = 0..steps-1 */
    double norm[BPTT_CASES][BPTT_STEPS];
    double rate[BPTT_CASES];   /* fitted factor per step back: exp(slope of ln norm) */
    double ratio[BPTT_CASES];  /* norm at k = steps-1 over norm at k = 0 */
    double rnn_predicted;      /* the RNN's factor per step for infinite width */
} bptt_result;

int exp_bptt_run(const exp_ctx *ctx, bptt_result *r);

/* ------------------------------------------------------------------- ewa */

enum { EWA_BETAS = 3 };
typedef struct ewa_result {
    double beta[EWA_BETAS];
    double err10_plain[EWA_BETAS], err10_corrected[EWA_BETAS]; /* mean |v_t - trend_t|, t <= 10 */
    int lag[EWA_BETAS];              /* shift that best aligns v with the trend (late part) */
    double wave_lag[EWA_BETAS], wave_gain[EWA_BETAS]; /* predicted for the trend's wave */
    double noise_raw, noise[EWA_BETAS]; /* std of (series - trend) and of (v - trend shifted) */
} ewa_result;

int exp_ewa_run(const exp_ctx *ctx, ewa_result *r);

/* ------------------------------------------------------------------- xor */

typedef struct xor_result {
    double lin_w[2], lin_b, lin_mse;   /* least squares in closed form */
    double lin_trained_mse;            /* the linear model trained by gradient descent */
    double hand_mse;                   /* the hand-set ReLU network */
    int hand_exact;                    /* its four outputs equal XOR exactly */
    int mlp_runs, mlp_solved;          /* trained 2-8-1 ReLU networks solving XOR */
    double mlp_best_mse;
} xor_result;

int exp_xor_run(const exp_ctx *ctx, xor_result *r);

/* ------------------------------------------------------------ regression */

typedef struct regression_result {
    double closed[2], gd[2];           /* [w, b] */
    double closed_mse, gd_mse;
    double max_diff;                   /* max |gd - closed| over w and b */
    int steps;
} regression_result;

int exp_regression_run(const exp_ctx *ctx, regression_result *r);

/* --------------------------------------------------------- approximation */

enum { APPROX_WIDTHS = 6 };
typedef struct approx_result {
    int width[APPROX_WIDTHS];
    double mse[APPROX_WIDTHS];   /* best final training MSE over the restarts */
} approx_result;

int exp_approximation_run(const exp_ctx *ctx, approx_result *r);

#endif
