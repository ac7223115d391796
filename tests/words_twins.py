#!/usr/bin/python3
"""The word models learn Debian's word list as their PyTorch twins do.

Lowercase ASCII words of /usr/share/dict/words (package wamerican) are split
once, by a seeded shuffle, into train.txt and val.txt (one tenth held out).
Both sides train on train.txt and measure the loss per character on val.txt:
nabla with `nabla train MODEL --data lines:train.txt --val lines:val.txt`,
PyTorch with the twin of the model (same layers, sizes and initialisation),
the same optimiser (Adam), learning rate, batch size and number of epochs
(so the same number of steps), each shuffling the training samples every
epoch with its own generator.  Prints a table of the six validation losses
with the unigram baseline, and fails if nabla's loss is more than 0.02 nats
from PyTorch's for a model.

Usage: words_twins.py BUILD_DIR [WORK_DIR] [--epochs N] [--seed S]   (make words-compare)
(--seed: of both sides' initialisation and shuffling, default 1; the split is fixed)
"""
import math
import os
import random
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = "/usr/share/dict/words"
TOLERANCE = 0.02

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(0)

# model file, context (0: whole lines), learning rate; batch and epochs shared
MODELS = [("words_mlp", 3, 0.003), ("words_gru", 0, 0.005), ("words_transformer", 0, 0.003)]
BATCH, EPOCHS, LENGTH = 64, 2, 23


def prepare(work):
    """train.txt and val.txt of lowercase ASCII words, split by a seeded shuffle."""
    with open(WORDS, encoding="utf-8") as f:
        words = [w for w in f.read().split("\n") if w and all("a" <= c <= "z" for c in w)]
    words = sorted(set(words))
    random.Random(1).shuffle(words)
    n_val = len(words) // 10
    parts = {"val": words[:n_val], "train": words[n_val:]}
    for name, part in parts.items():
        with open(os.path.join(work, name + ".txt"), "w", encoding="utf-8") as f:
            f.write("".join(w + "\n" for w in part))
    return parts


def encode(words, context, vocab):
    """nabla's lines: samples (docs/sequences.md, Text data) as tensors."""
    ids = {c: i for i, c in enumerate(vocab)}
    xs, ys = [], []
    for w in words:
        c = [ids[ch] for ch in w]
        if context:
            padded = [0] * context + c
            for p in range(len(c) + 1):
                xs.append(padded[p:p + context])
                ys.append(c[p] if p < len(c) else 0)
        else:
            xs.append(([0] + c + [0] * LENGTH)[:LENGTH])
            ys.append((c + [0] + [-100] * LENGTH)[:LENGTH])
    return torch.tensor(xs), torch.tensor(ys)


class MLP(nn.Module):
    def __init__(self, V):
        super().__init__()
        self.net = nn.Sequential(nn.Embedding(V, 10), nn.Flatten(), nn.Linear(30, 200),
                                 nn.Tanh(), nn.Linear(200, V))

    def forward(self, x):
        return self.net(x)


class GRU(nn.Module):
    def __init__(self, V):
        super().__init__()
        self.emb, self.gru, self.out = nn.Embedding(V, 16), nn.GRU(16, 64, batch_first=True), nn.Linear(64, V)

    def forward(self, x):
        return self.out(self.gru(self.emb(x))[0])


class Block(nn.Module):
    def __init__(self, D, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.attn = nn.MultiheadAttention(D, heads, batch_first=True)
        self.up, self.down = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, V, D=32, heads=4, blocks=2):
        super().__init__()
        self.tok, self.pos = nn.Embedding(V, D), nn.Embedding(LENGTH, D)
        self.blocks = nn.ModuleList(Block(D, heads) for _ in range(blocks))
        self.lnf, self.head = nn.LayerNorm(D), nn.Linear(D, V)
        self.register_buffer("mask", torch.triu(torch.ones(LENGTH, LENGTH, dtype=torch.bool), 1))

    def forward(self, x):
        h = self.tok(x) + self.pos.weight
        for b in self.blocks:
            h = b(h, self.mask)
        return self.head(self.lnf(h))


def loss_of(model, x, y):
    z = model(x)
    return F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1), ignore_index=-100,
                           reduction="sum"), (y != -100).sum()


def torch_run(name, context, lr, parts, vocab, seed):
    torch.manual_seed(seed)
    V = len(vocab)
    model = {"words_mlp": MLP, "words_gru": GRU, "words_transformer": GPT}[name](V)
    xt, yt = encode(parts["train"], context, vocab)
    xv, yv = encode(parts["val"], context, vocab)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), BATCH):
            b = order[i:i + BATCH]
            total, count = loss_of(model, xt[b], yt[b])
            opt.zero_grad()
            (total / count.clamp(min=1)).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        sums = [loss_of(model, xv[i:i + 1024], yv[i:i + 1024]) for i in range(0, len(xv), 1024)]
    return float(sum(s for s, _ in sums) / sum(c for _, c in sums))


def nabla_run(build, work, name, context, lr, seed):
    ctx = f",context={context}" if context else ""
    log = os.path.join(work, name + ".csv")
    cmd = [os.path.join(build, "nabla"), "train", os.path.join(ROOT, "models", name + ".nn"),
           "--data", f"lines:{work}/train.txt{ctx}", "--val", f"lines:{work}/val.txt{ctx}",
           "--epochs", str(EPOCHS), "--batch", str(BATCH), "--optim", "adam", "--lr", str(lr),
           "--seed", str(seed), "--quiet", "--log", log,
           "--out", os.path.join(work, name + ".safetensors")]
    subprocess.run(cmd, check=True)
    with open(log) as f:
        return float(f.read().strip().split("\n")[-1].split(",")[5])


def unigram(parts, vocab):
    """The loss of the character frequencies of train.txt on val.txt."""
    counts = {c: 1 for c in vocab}
    for w in parts["train"]:
        for c in w + "\n":
            counts[c] += 1
    total = sum(counts.values())
    chars = [c for w in parts["val"] for c in w + "\n"]
    return -sum(math.log(counts[c] / total) for c in chars) / len(chars)


def main():
    global EPOCHS
    args, seed = sys.argv[1:], 1
    for flag in ("--epochs", "--seed"):
        if flag in args:
            i = args.index(flag)
            if flag == "--epochs":
                EPOCHS = int(args[i + 1])
            else:
                seed = int(args[i + 1])
            del args[i:i + 2]
    build = os.path.abspath(args[0] if args else os.path.join(ROOT, "build"))
    work = os.path.abspath(args[1]) if len(args) > 1 else tempfile.mkdtemp(prefix="words-")
    os.makedirs(work, exist_ok=True)
    if not os.path.exists(WORDS):
        print(f"skipped: {WORDS} is missing (apt-get install wamerican)")
        return 0
    # one thread: these models are too small to gain from more, and spinning
    # threads on a busy machine make PyTorch twenty times slower
    torch.set_num_threads(1)
    parts = prepare(work)
    vocab = ["\n"] + sorted(set("".join(parts["train"])))
    print(f"{len(parts['train'])} training and {len(parts['val'])} validation words, "
          f"{len(vocab)} characters, in {work}; {EPOCHS} epochs, batch {BATCH}, Adam, seed {seed}")
    print(f"unigram baseline: {unigram(parts, vocab):.4f} nats per character")
    print(f"{'model':<20} {'lr':>6} {'nabla':>8} {'PyTorch':>8} {'diff':>8}")
    failed = 0
    for name, context, lr in MODELS:
        t = time.time()
        ours = nabla_run(build, work, name, context, lr, seed)
        t_ours = time.time() - t
        t = time.time()
        theirs = torch_run(name, context, lr, parts, vocab, seed)
        t_theirs = time.time() - t
        diff = ours - theirs
        failed += abs(diff) > TOLERANCE
        print(f"{name:<20} {lr:>6g} {ours:>8.4f} {theirs:>8.4f} {diff:>+8.4f}   "
              f"({t_ours:.0f} s, {t_theirs:.0f} s){'  MORE THAN 0.02 APART' if abs(diff) > TOLERANCE else ''}",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
