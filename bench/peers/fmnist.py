"""Fashion-MNIST for the peer scripts: the IDX files of Debian's
dataset-fashion-mnist package, as numpy arrays, and the printing helpers
that every peer script shares."""
import gzip
import os
import resource
import struct

import numpy as np

DATA_DIR = os.environ.get("NB_FASHION_DIR", "/usr/share/datasets/fashion-mnist")
BATCH = 128
WARMUP_BATCHES = 5


def idx(name):
    """One IDX file (gzip-compressed), as a uint8 array of its shape."""
    with gzip.open(os.path.join(DATA_DIR, name)) as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dims = struct.unpack(">" + "I" * (magic & 0xFF), f.read(4 * (magic & 0xFF)))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def train_set():
    """The 60,000 training images as float32 [N, 1, 28, 28] in [0, 1] and
    their labels as int64, as a user would hand them to a framework."""
    x = idx("train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = idx("train-labels-idx1-ubyte.gz").astype(np.int64)
    return x.reshape(-1, 1, 28, 28), y


def batches(n, count, seed=0):
    """Index arrays of `count` full batches of a fixed shuffle of n samples
    (wrapping around), warm-up batches first."""
    perm = np.random.default_rng(seed).permutation(n)
    per_epoch = n // BATCH
    for b in range(count):
        start = (b % per_epoch) * BATCH
        yield perm[start:start + BATCH]


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def result(**fields):
    """One line the bench's table reads: RESULT key=value ..."""
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()), flush=True)


def kernels(side, text):
    """Lines saying which kernels a peer runs: KERNELS side: text."""
    for line in text.strip().splitlines():
        print(f"KERNELS {side}: {line.rstrip()}", flush=True)
