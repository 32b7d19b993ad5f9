"""Learning-rate schedule tuning: one learning rate per inner step, meta-learned with FG²U, in JAX.

φ = log η_t for t = 0 … T−1 (T values). Inner problem: T steps of minibatch SGD,
θ_{t+1} = θ_t − exp(φ_t)·∇ℓ(θ_t; batch_t), on a softmax classifier of scikit-learn's digits;
outer objective: the validation cross-entropy of θ_T. The step index reaches the transition through
``inner_batches`` (its t-th slice), so the schedule needs no counter in the inner state.

    python examples/lr_schedule_jax.py
    python examples/lr_schedule_jax.py --inner-steps 100 --meta-steps 200 --directions 32

Prints the cosine between the FG²U estimate and the exact (RGU) meta-gradient at the initial schedule,
the validation loss before and after meta-training, and the learned schedule.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import fg2u
import fg2u.jax as fj


def cross_entropy(params, x, y):
    logits = x @ params["w"] + params["b"]
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def make_problem(inner_steps: int, batch_size: int, seed: int):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    train, val = order[:1000], order[1000:1500]
    # one minibatch per inner step: leading axis T
    idx = np.stack([rng.choice(train, batch_size, replace=False) for _ in range(inner_steps)])
    inner_batches = (jnp.asarray(x[idx]), jnp.asarray(y[idx]), jnp.arange(inner_steps))

    grad = jax.grad(cross_entropy)

    def init(phi):
        return {"w": jnp.zeros((64, 10)), "b": jnp.zeros(10)}

    def step(params, phi, batch):
        xb, yb, t = batch
        lr = jnp.exp(phi[t])
        return jax.tree.map(lambda p, g: p - lr * g, params, grad(params, xb, yb))

    def outer_loss(params, phi, batch):
        xv, yv = batch
        return cross_entropy(params, xv, yv)

    return fg2u.UnrolledProblem(
        init,
        step,
        outer_loss,
        inner_steps,
        inner_batches=inner_batches,
        outer_batch=(jnp.asarray(x[val]), jnp.asarray(y[val])),
    )


def cosine(a, b) -> float:
    return float(a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inner-steps", type=int, default=40, help="T, also the number of meta parameters")
    p.add_argument("--meta-steps", type=int, default=50)
    p.add_argument("--directions", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--initial-lr", type=float, default=0.05)
    p.add_argument("--meta-lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    problem = make_problem(args.inner_steps, args.batch_size, args.seed)
    phi = jnp.full(args.inner_steps, jnp.log(args.initial_lr))  # a small constant rate to start from
    estimate = jax.jit(fj.FG2U(num_directions=args.directions))
    key = jax.random.PRNGKey(args.seed)

    g_exact, aux = jax.jit(fj.RGU())(problem, phi, None)
    g_fg2u, _ = estimate(problem, phi, key)
    cos = cosine(g_fg2u, g_exact)
    before = float(aux.outer_loss)

    meta_opt = optax.adam(args.meta_lr)
    opt_state = meta_opt.init(phi)
    for _ in range(args.meta_steps):
        key, sub = jax.random.split(key)
        g, _ = estimate(problem, phi, sub)
        updates, opt_state = meta_opt.update(g, opt_state, phi)
        phi = optax.apply_updates(phi, updates)
    after = float(jax.jit(fj.meta_objective(problem))(phi))

    print(f"meta-gradient cosine to RGU: {cos:.4f}  (FG2U, b = {args.directions}, N = T = {args.inner_steps})")
    print(f"outer loss before: {before:.6f}")
    print(f"outer loss after: {after:.6f}")
    print("learned learning rates (every 10th step):", np.round(np.exp(np.asarray(phi))[::10], 4).tolist())
    return {"cosine": cos, "before": before, "after": after}


if __name__ == "__main__":
    main()
