"""The word stream of the bench's sequence models, built as nabla-bench
builds it: the lowercase words (lines of a-z only) of NB_WORDS (default
Debian's /usr/share/dict/words, package wamerican), in file order, each
followed by the boundary 0, after a first boundary; a..z are 1..26.
Window i is x = s[16 i .. 16 i + 15], y = s[16 i + 1 .. 16 i + 16]; batch b
is windows 32 b .. 32 b + 31, wrapping around, the same on every side."""
import os

import numpy as np

WORDS = os.environ.get("NB_WORDS", "/usr/share/dict/words")
BATCH, CONTEXT, VOCAB = 32, 16, 27
WARMUP_BATCHES = 5


def stream():
    ids = [0]
    with open(WORDS, "rb") as f:
        for line in f:
            w = line.rstrip(b"\r\n")
            if w and all(97 <= c <= 122 for c in w):
                ids.extend(c - 96 for c in w)
                ids.append(0)
    return np.array(ids, dtype=np.int64)


def windows():
    """Every window of the stream: x and y, int64 [N, CONTEXT]."""
    s = stream()
    n = (len(s) - 1) // CONTEXT
    x = s[:n * CONTEXT].reshape(n, CONTEXT)
    y = s[1:n * CONTEXT + 1].reshape(n, CONTEXT)
    return x, y


def batches(n, count):
    """Index arrays of `count` batches of consecutive windows, warm-up first."""
    for b in range(count):
        yield (np.arange(BATCH) + b * BATCH) % n
