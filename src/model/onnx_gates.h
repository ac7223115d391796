/* The gate order of ONNX's recurrent ops against PyTorch's (and nabla's),
 * for the ONNX export and import: gate j of ONNX's W, R and B is gate
 * onnx_gate_order[kind][j] of PyTorch's, kind an nb_rnn_kind.
 *   RNN:  one gate.
 *   LSTM: ONNX i o f c, PyTorch i f g o.
 *   GRU:  ONNX z r h,   PyTorch r z n. */
#ifndef NB_ONNX_GATES_H
#define NB_ONNX_GATES_H

static const int onnx_gate_count[3] = {1, 4, 3};
static const int onnx_gate_order[3][4] = {{0}, {0, 3, 1, 2}, {1, 0, 2}};
static const char *const onnx_rnn_op[3] = {"RNN", "LSTM", "GRU"};

#endif
