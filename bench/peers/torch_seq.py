"""PyTorch training throughput on the bench's sequence models, measured the
way nabla-bench measures nabla: Adam (lr 1e-3), batch 32 windows of 16
tokens of the word stream (words.py), WARMUP_BATCHES untimed steps, then
--batches timed steps of: gather the batch, forward, cross-entropy at every
position, backward, optimiser step.

  torch_seq.py --model gru|transformer --threads T [--batches N]
               [--mode eager|compile] [--label NAME]

The models are nabla-bench's, layer for layer, with PyTorch's default
initialisation (nabla's defaults are the same):
  gru          nn.Embedding(27, 16), nn.GRU(16, 64, batch_first=True), nn.Linear(64, 27)
  transformer  token and position embeddings of 32, two pre-LN blocks
               (LayerNorm, causal self-attention with 4 heads, residual;
               LayerNorm, Linear 128, GELU, Linear 32, residual), LayerNorm,
               Linear 27: models/words_transformer.nn at context 16.
Attention has nn.MultiheadAttention's parameters and initialisation (one
in-projection [3D, D], xavier_uniform, zero biases) and runs as
F.scaled_dot_product_attention(is_causal=True), PyTorch 2.x's fastest form;
where this torch has no such function (1.13), as softmax(q kᵀ/√d + mask) v.

Prints RESULT label=... model=... threads=... samples_per_s=...
tokens_per_s=... loss=... params=..."""
import argparse
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import fmnist
import words
from torch_train import adam


class GRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(words.VOCAB, 16)
        self.gru = nn.GRU(16, 64, batch_first=True)
        self.out = nn.Linear(64, words.VOCAB)

    def forward(self, x):
        return self.out(self.gru(self.emb(x))[0])


class Attention(nn.Module):
    """Causal multi-head self-attention with nn.MultiheadAttention's
    parameters and initialisation."""

    def __init__(self, D, heads):
        super().__init__()
        self.heads = heads
        self.in_proj = nn.Linear(D, 3 * D)
        self.out_proj = nn.Linear(D, D)
        nn.init.xavier_uniform_(self.in_proj.weight)
        nn.init.zeros_(self.in_proj.bias)
        nn.init.zeros_(self.out_proj.bias)
        self.sdpa = getattr(F, "scaled_dot_product_attention", None)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.in_proj(x).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        if self.sdpa is not None:
            y = self.sdpa(q, k, v, is_causal=True)
        else:
            s = q @ k.transpose(-2, -1) / math.sqrt(D // self.heads)
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            y = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1) @ v
        return self.out_proj(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, D, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.attn = Attention(D, heads)
        self.up, self.down = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class Transformer(nn.Module):
    def __init__(self, D=32, heads=4, blocks=2):
        super().__init__()
        self.tok, self.pos = nn.Embedding(words.VOCAB, D), nn.Embedding(words.CONTEXT, D)
        self.blocks = nn.Sequential(*(Block(D, heads) for _ in range(blocks)))
        self.lnf, self.head = nn.LayerNorm(D), nn.Linear(D, words.VOCAB)

    def forward(self, x):
        return self.head(self.lnf(self.blocks(self.tok(x) + self.pos.weight)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gru", choices=["gru", "transformer"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--label", default="torch")
    a = ap.parse_args()
    if a.mode == "compile" and not hasattr(torch, "compile"):
        print(f"torch_seq.py: torch {torch.__version__} has no torch.compile", file=sys.stderr)
        return 3
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x_np, y_np = words.windows()
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    model = GRU() if a.model == "gru" else Transformer()
    params = sum(p.numel() for p in model.parameters())
    opt, kind = adam(model.parameters(), a.mode)
    step_model, opt_step = model, opt.step
    if a.mode == "compile":
        step_model, opt_step = torch.compile(model), torch.compile(opt.step)
    t0 = 0.0
    for b, i in enumerate(words.batches(len(x), words.WARMUP_BATCHES + a.batches)):
        if b == words.WARMUP_BATCHES:
            t0 = time.perf_counter()
        i = torch.from_numpy(i)
        opt.zero_grad(set_to_none=True)
        z = step_model(x[i])
        loss = F.cross_entropy(z.reshape(-1, words.VOCAB), y[i].reshape(-1))
        loss.backward()
        opt_step()
    dt = time.perf_counter() - t0
    sps = a.batches * words.BATCH / dt
    fmnist.result(label=a.label, model=a.model, threads=a.threads, batches=a.batches,
                  samples_per_s=f"{sps:.0f}", tokens_per_s=f"{sps * words.CONTEXT:.0f}",
                  context=words.CONTEXT, loss=f"{loss.item():.4f}", adam=kind, params=params,
                  peak_rss_mb=f"{fmnist.peak_rss_mb():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
