#!/usr/bin/env python3
"""Write the ONNX files of PyTorch 2's default exporter (torch.export) that
tests/test_onnx_import.c reads: tiny nn.Embedding + nn.LSTM / nn.GRU
(batch_first) + nn.Linear models, at every position and at out[:, -1], with
the tensors in the file.  PyTorch 2 writes their zero initial states and the
Squeeze of the direction axis as shape arithmetic (Shape, Slice, Mul,
Concat, Reshape), which the import follows.  Needs PyTorch 2.x and
onnxscript (make onnx-import-check installs them into a virtual environment:
run this script with its python); the outputs are committed."""
import os

import torch
from torch import nn

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx")


class Net(nn.Module):
    def __init__(self, kind, last):
        super().__init__()
        self.last = last
        self.emb = nn.Embedding(4, 3)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](3, 2, batch_first=True)
        self.fc = nn.Linear(2, 4)

    def forward(self, ids):
        out = self.rnn(self.emb(ids))[0]
        return self.fc(out[:, -1] if self.last else out)


for kind, last in (("lstm", False), ("gru", True)):
    torch.manual_seed(0)
    name = f"valid_torch2_{kind}{'_last' if last else ''}.onnx"
    torch.onnx.export(Net(kind, last).eval(), (torch.zeros(2, 5, dtype=torch.long),),
                      os.path.join(here, name), dynamo=True, external_data=False,
                      input_names=["ids"], output_names=["logits"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},))
