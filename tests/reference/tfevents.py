#!/usr/bin/env python3
"""Reference event file for nabla's TensorBoard writer (src/formats/tfevents.c),
written by TensorBoard's own Python code: its Event and Summary messages
(tensorboard.compat.proto) and its TFRecord writer
(tensorboard.summary.writer.record_writer.RecordWriter, masked CRC-32C).

Run from the repository root in a virtual environment with TensorBoard:
    python3 -m venv /tmp/venv-tb && /tmp/venv-tb/bin/pip install tensorboard
    /tmp/venv-tb/bin/python tests/reference/tfevents.py
It writes tests/reference/events.out.tfevents.ref; tests/test_tfevents.c
writes the same scalars through nb_tb_create / nb_tb_scalar and must
reproduce it byte for byte.  The scalars (keep in step with the test):
step 0 and a value of 0 (proto3 leaves out a zero step but not the value of
a oneof), a negative step, a step beyond 32 bits, the largest float, a
subnormal float, a value that float rounds, and tags with spaces and
non-ASCII characters.
"""
import io

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

VERSION_WALL_TIME = 1700000000.5
SCALARS = [  # tag, step, value, wall_time
    ("train/loss", 1, 2.302585092994046, 1700000001.25),
    ("train/loss", 2, 1.75, 1700000002.0),
    ("train/lr", 2, 0.001, 1700000002.0),
    ("epoch/val_acc", 0, 0.0, 1700000003.0),
    ("epoch/train_loss", 1 << 40, -0.5, 1700000004.0),
    ("diagnose/dense 1/grad_norm", -3, 3.4028234663852886e38, 1700000005.0),
    ("diagnose/\u00e9paisseur/\u03b4", 8, 1e-40, 1700000006.125),
]


def main():
    out = io.BytesIO()
    w = RecordWriter(out)
    w.write(event_pb2.Event(wall_time=VERSION_WALL_TIME,
                            file_version="brain.Event:2").SerializeToString())
    for tag, step, value, wall_time in SCALARS:
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
        w.write(event_pb2.Event(wall_time=wall_time, step=step,
                                summary=summary).SerializeToString())
    with open("tests/reference/events.out.tfevents.ref", "wb") as f:
        f.write(out.getvalue())


if __name__ == "__main__":
    main()
