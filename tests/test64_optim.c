/* The optimiser, clipping and schedule tests of test_optim.c, run against the
 * double build: with no float32 rounding, nabla's updates must reproduce
 * PyTorch's float64 trajectories to within accumulated double rounding. */
#define TRAJECTORY_RTOL 1e-12
#include "test_optim.c"
