"""JAX training throughput on the bench's Fashion-MNIST models: one
jit-compiled train step (gather the batch from the data on the device,
forward, cross-entropy, gradients, Adam as PyTorch defines it with lr 1e-3),
WARMUP_BATCHES untimed steps (the first one compiles), then --batches timed.

  jax_train.py --model mlp|mlp-wide|cnn|cnn-bn --threads T [--batches N]
  jax_train.py --kernels

The convolutions run channels-last (NHWC), the layout XLA's CPU backend
prefers.  --threads T pins the process to T cores and sizes XLA's thread
pool to T, before JAX starts."""
import argparse
import os
import sys
import time

import fmnist


def limit_threads(t):
    """Before JAX is imported: T cores and an XLA pool of T threads."""
    cpus = sorted(os.sched_getaffinity(0))[:t]
    os.sched_setaffinity(0, cpus)
    flags = os.environ.get("XLA_FLAGS", "")
    if t == 1:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["XLA_FLAGS"] = flags.strip()


def init(model, key):
    """PyTorch's default initialisation: uniform in +-1/sqrt(fan_in)."""
    import jax
    import jax.numpy as jnp
    if model == "cnn":
        shapes = [("conv", 3, 3, 1, 32), ("conv", 3, 3, 32, 64), ("dense", 1600, 128),
                  ("dense", 128, 10)]
    elif model == "cnn-bn":  # convolutions without bias, each with a batch norm's scale, shift
        shapes = [("conv", 3, 3, 1, 32), ("bn", 32), ("conv", 3, 3, 32, 64), ("bn", 64),
                  ("dense", 3136, 128), ("dense", 128, 10)]
    else:
        width = {"mlp": (256, 128), "mlp-wide": (1024, 1024)}[model]
        shapes = [("dense", 784, width[0]), ("dense", width[0], width[1]),
                  ("dense", width[1], 10)]
    params = []
    for kind, *shape in shapes:
        if kind == "bn":
            params.append((jnp.ones(shape, jnp.float32), jnp.zeros(shape, jnp.float32)))
            continue
        key, kw, kb = jax.random.split(key, 3)
        fan_in = shape[0] if kind == "dense" else shape[0] * shape[1] * shape[2]
        bound = 1.0 / fan_in ** 0.5
        w = jax.random.uniform(kw, tuple(shape), jnp.float32, -bound, bound)
        if model == "cnn-bn" and kind == "conv":
            params.append((w,))
        else:
            params.append((w, jax.random.uniform(kb, (shape[-1],), jnp.float32, -bound, bound)))
    return params


def pool2(x):
    import jax
    import jax.numpy as jnp
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def forward_bn(params, x, key):
    """models/fashion_cnn.nn: conv, batch norm (the batch's statistics), relu,
    pool, twice; dropout 0.3 before each dense layer, masks from key."""
    import jax
    import jax.numpy as jnp
    for (w,), (g, b) in ((params[0], params[1]), (params[2], params[3])):
        x = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        mu, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
        x = pool2(jax.nn.relu((x - mu) * jax.lax.rsqrt(var + 1e-5) * g + b))
    x = x.reshape(x.shape[0], -1)
    for (w, b), k in zip(params[4:], jax.random.split(key)):
        x = jnp.where(jax.random.bernoulli(k, 0.7, x.shape), x / 0.7, 0) @ w + b
        if w.shape[1] != 10:
            x = jax.nn.relu(x)
    return x


def forward(params, x, model, key):
    import jax
    import jax.numpy as jnp
    if model == "cnn-bn":
        return forward_bn(params, x, key)
    if model == "cnn":
        for w, b in params[:2]:
            x = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            x = jax.nn.relu(x + b)
            x = pool2(x)
        params = params[2:]
    x = x.reshape(x.shape[0], -1)
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def make_adam_step(logits):
    """One jitted training step for logits(params, x, key) (key: new each step,
    for dropout): the batch gathered on the device, cross-entropy (over the
    last axis, at every position), value_and_grad, and Adam (lr 1e-3,
    PyTorch's defaults)."""
    import jax
    import jax.numpy as jnp
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-3

    def loss_fn(params, x, y, key):
        logp = jax.nn.log_softmax(logits(params, x, key))
        return -jnp.mean(jnp.take_along_axis(logp, y[..., None], axis=-1))

    def step(params, m, v, t, data_x, data_y, idx):
        key = jax.random.fold_in(jax.random.PRNGKey(1), t.astype(jnp.int32))  # dropout's
        loss, g = jax.value_and_grad(loss_fn)(params, data_x[idx], data_y[idx], key)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        params = jax.tree_util.tree_map(
            lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v)
        return params, m, v, t, loss

    return jax.jit(step, donate_argnums=(0, 1, 2))


def kernels():
    import jax
    import jaxlib
    dev = jax.devices()[0]
    client = dev.client
    fmnist.kernels("jax", f"jax {jax.__version__}, jaxlib {jaxlib.__version__} (XLA)\n"
                   f"backend {jax.default_backend()}: {client.platform} client "
                   f"({getattr(client, 'runtime_type', '?')}), {len(jax.devices())} device(s)\n"
                   f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '') or 'unset'} (jax_train.py sets "
                   "one thread's with --threads 1)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--kernels", action="store_true")
    a = ap.parse_args()
    if a.kernels:
        kernels()
        return 0
    if a.model not in ("mlp", "mlp-wide", "cnn", "cnn-bn"):
        raise SystemExit(f"jax_train.py: unknown model '{a.model}'")
    limit_threads(a.threads)
    import jax
    import jax.numpy as jnp
    x_np, y_np = fmnist.train_set()
    if a.model in ("cnn", "cnn-bn"):
        x_np = x_np.transpose(0, 2, 3, 1)  # NHWC
    data_x, data_y = jnp.asarray(x_np), jnp.asarray(y_np.astype("int32"))
    params = init(a.model, jax.random.PRNGKey(0))
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    t = jnp.float32(0)
    step = make_adam_step(lambda params, x, key: forward(params, x, a.model, key))
    t0 = 0.0
    for b, idx in enumerate(fmnist.batches(len(x_np), fmnist.WARMUP_BATCHES + a.batches)):
        if b == fmnist.WARMUP_BATCHES:
            jax.block_until_ready(params)
            t0 = time.perf_counter()
        params, m, v, t, loss = step(params, m, v, t, data_x, data_y, jnp.asarray(idx))
    jax.block_until_ready(params)
    dt = time.perf_counter() - t0
    fmnist.result(label="jax", model=a.model, threads=a.threads, batches=a.batches,
                  samples_per_s=f"{a.batches * fmnist.BATCH / dt:.0f}",
                  loss=f"{float(loss):.4f}", peak_rss_mb=f"{fmnist.peak_rss_mb():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
