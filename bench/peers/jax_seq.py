"""JAX training throughput on the bench's sequence models: one jit-compiled
train step (gather the batch of windows on the device, forward,
cross-entropy at every position, gradients, Adam as PyTorch defines it with
lr 1e-3), WARMUP_BATCHES untimed steps (the first one compiles), then
--batches timed, on the word stream of words.py (batch 32, context 16).

  jax_seq.py --model gru|transformer --threads T [--batches N]

The models are nabla-bench's, with PyTorch's initialisation, written in
jax.numpy: the GRU's input projection of all 16 steps is one product and its
recurrence a lax.scan over time (PyTorch's equations, gates r, z, n);
attention is written out (q kᵀ/√d, causal mask, softmax, · v), GELU is the
exact (erf) one as in nabla and PyTorch.  --threads T as in jax_train.py."""
import argparse
import math
import sys
import time

import fmnist
import words
from jax_train import limit_threads, make_adam_step


def uniform(key, shape, bound):
    import jax
    import jax.numpy as jnp
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def linear(key, n_in, n_out):
    """nn.Linear's initialisation: weight [in, out] and bias in +-1/sqrt(in)."""
    import jax
    kw, kb = jax.random.split(key)
    b = 1.0 / math.sqrt(n_in)
    return {"w": uniform(kw, (n_in, n_out), b), "b": uniform(kb, (n_out,), b)}


def init_gru(key, V=words.VOCAB, D=16, H=64):
    import jax
    ks = jax.random.split(key, 6)
    k = 1.0 / math.sqrt(H)
    return {"emb": jax.random.normal(ks[0], (V, D)),
            "w_ih": uniform(ks[1], (D, 3 * H), k), "w_hh": uniform(ks[2], (H, 3 * H), k),
            "b_ih": uniform(ks[3], (3 * H,), k), "b_hh": uniform(ks[4], (3 * H,), k),
            "out": linear(ks[5], H, V)}


def init_transformer(key, V=words.VOCAB, T=words.CONTEXT, D=32, blocks=2):
    import jax
    import jax.numpy as jnp
    ks = jax.random.split(key, 3 + blocks)
    p = {"tok": jax.random.normal(ks[0], (V, D)), "pos": jax.random.normal(ks[1], (T, D)),
         "lnf": {"g": jnp.ones(D), "b": jnp.zeros(D)}, "head": linear(ks[2], D, V), "blocks": []}
    for i in range(blocks):
        k1, k2, k3, k4 = jax.random.split(ks[3 + i], 4)
        out = linear(k2, D, D)
        out["b"] = jnp.zeros(D)
        p["blocks"].append({
            "ln1": {"g": jnp.ones(D), "b": jnp.zeros(D)}, "ln2": {"g": jnp.ones(D), "b": jnp.zeros(D)},
            # xavier_uniform of a [3D, D] weight: bound sqrt(6 / (D + 3D))
            "qkv": {"w": uniform(k1, (D, 3 * D), math.sqrt(6.0 / (4 * D))), "b": jnp.zeros(3 * D)},
            "out": out, "up": linear(k3, D, 4 * D), "down": linear(k4, 4 * D, D)})
    return p


def gru_forward(p, x):
    import jax
    import jax.numpy as jnp
    H = p["w_hh"].shape[0]
    xp = p["emb"][x] @ p["w_ih"] + p["b_ih"]  # [B, T, 3H]: every step in one product

    def cell(h, xp_t):
        hh = h @ p["w_hh"] + p["b_hh"]
        r = jax.nn.sigmoid(xp_t[:, :H] + hh[:, :H])
        z = jax.nn.sigmoid(xp_t[:, H:2 * H] + hh[:, H:2 * H])
        n = jnp.tanh(xp_t[:, 2 * H:] + r * hh[:, 2 * H:])
        h = (1 - z) * n + z * h
        return h, h

    h0 = jnp.zeros((x.shape[0], H), jnp.float32)
    _, hs = jax.lax.scan(cell, h0, jnp.swapaxes(xp, 0, 1))
    return jnp.swapaxes(hs, 0, 1) @ p["out"]["w"] + p["out"]["b"]


def layernorm(p, x):
    import jax.numpy as jnp
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + 1e-5) * p["g"] + p["b"]


def attention(p, x, heads=4):
    import jax
    import jax.numpy as jnp
    B, T, D = x.shape
    qkv = (x @ p["qkv"]["w"] + p["qkv"]["b"]).reshape(B, T, 3, heads, D // heads)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # [B, heads, T, dh]
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D // heads)
    s = jnp.where(jnp.tril(jnp.ones((T, T), bool)), s, -jnp.inf)
    y = (jax.nn.softmax(s, axis=-1) @ v).transpose(0, 2, 1, 3).reshape(B, T, D)
    return y @ p["out"]["w"] + p["out"]["b"]


def transformer_forward(p, x):
    import jax
    h = p["tok"][x] + p["pos"]
    for blk in p["blocks"]:
        h = h + attention(blk, layernorm(blk["ln1"], h))
        u = jax.nn.gelu(layernorm(blk["ln2"], h) @ blk["up"]["w"] + blk["up"]["b"], approximate=False)
        h = h + u @ blk["down"]["w"] + blk["down"]["b"]
    return layernorm(p["lnf"], h) @ p["head"]["w"] + p["head"]["b"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gru", choices=["gru", "transformer"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, default=100)
    a = ap.parse_args()
    limit_threads(a.threads)
    import jax
    import jax.numpy as jnp
    x_np, y_np = words.windows()
    data_x, data_y = jnp.asarray(x_np.astype("int32")), jnp.asarray(y_np.astype("int32"))
    init, forward = {"gru": (init_gru, gru_forward),
                     "transformer": (init_transformer, transformer_forward)}[a.model]
    params = init(jax.random.PRNGKey(0))
    n_params = sum(int(p.size) for p in jax.tree_util.tree_leaves(params))
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    t = jnp.float32(0)
    step = make_adam_step(lambda params, x, key: forward(params, x))
    t0 = 0.0
    for b, idx in enumerate(words.batches(len(x_np), words.WARMUP_BATCHES + a.batches)):
        if b == words.WARMUP_BATCHES:
            jax.block_until_ready(params)
            t0 = time.perf_counter()
        params, m, v, t, loss = step(params, m, v, t, data_x, data_y, jnp.asarray(idx))
    jax.block_until_ready(params)
    dt = time.perf_counter() - t0
    sps = a.batches * words.BATCH / dt
    fmnist.result(label="jax", model=a.model, threads=a.threads, batches=a.batches,
                  samples_per_s=f"{sps:.0f}", tokens_per_s=f"{sps * words.CONTEXT:.0f}",
                  context=words.CONTEXT, loss=f"{float(loss):.4f}", params=n_params,
                  peak_rss_mb=f"{fmnist.peak_rss_mb():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
