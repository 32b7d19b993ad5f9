"""Per-weight decay of a flax nnx MLP on scikit-learn's digits, in JAX: φ is an ``nnx.State``.

``nnx.split(model)`` separates the model into its static ``graphdef`` and its parameters, an ``nnx.State``
(a JAX pytree); the inner loss rebuilds the model with ``nnx.merge(graphdef, params)``, so the parameters
flow through ``fj.optax_transition`` (optax SGD or Adam) like any pytree. φ has the structure of the
parameters (one log L2 strength per weight and bias: N = 1210 for 64 → 16 → 10), built by ``tree_map``
over the parameter State, so it is an ``nnx.State`` too; FG²U's estimate comes back as one.
Inner problem: T optimiser steps on the training cross-entropy + Σ exp(φ)·θ²; outer objective: the
validation cross-entropy of θ_T. FG²U (forward-mode tangents, memory independent of T) versus RGU (exact).

    python examples/weight_decay_nnx.py
    python examples/weight_decay_nnx.py --inner-optimizer sgd --inner-lr 0.5 --meta-steps 50

Prints the cosine between the FG²U estimate and the exact (RGU) meta-gradient at the initial φ, and the
validation loss before and after meta-training φ with FG²U.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from sklearn.datasets import load_digits

import fg2u
import fg2u.jax as fj


class MLP(nnx.Module):
    def __init__(self, d_in: int, hidden: int, d_out: int, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(d_in, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, d_out, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(jnp.tanh(self.hidden(x)))


def load(train_size: int, seed: int = 0):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(y))
    tr, va = order[:train_size], order[train_size : train_size + 500]
    return jnp.asarray(x[tr]), jnp.asarray(y[tr]), jnp.asarray(x[va]), jnp.asarray(y[va])


def make_problem(graphdef, params0, data, inner_steps: int, optimizer: optax.GradientTransformation):
    x_train, y_train, x_val, y_val = data

    def cross_entropy(params, x, y):
        logits = nnx.merge(graphdef, params)(x)  # a fresh module around these parameters (cheap: no copy)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

    def inner_loss(params, phi, batch):
        # φ and the parameters are States of the same structure: leaf by leaf, exp(φ)·θ²
        decay = jax.tree_util.tree_map(lambda log_l2, p: jnp.sum(jnp.exp(log_l2) * p**2), phi, params)
        return cross_entropy(params, x_train, y_train) + sum(jax.tree_util.tree_leaves(decay))

    init, step = fj.optax_transition(inner_loss, optimizer, params0)
    outer_loss = lambda state, phi, batch: cross_entropy(state.params, x_val, y_val)  # noqa: E731
    return fg2u.UnrolledProblem(init=init, step=step, outer_loss=outer_loss, num_steps=inner_steps)


def cosine(a, b) -> float:
    a, b = (jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(t)]) for t in (a, b))
    return float(a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meta-steps", type=int, default=20)
    p.add_argument("--inner-steps", type=int, default=20)
    p.add_argument("--directions", type=int, default=16, help="b, random tangents per FG²U estimate")
    p.add_argument("--train-size", type=int, default=300)
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--inner-optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--inner-lr", type=float, default=0.05)
    p.add_argument("--meta-lr", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    graphdef, params0 = nnx.split(MLP(64, args.hidden, 10, rngs=nnx.Rngs(args.seed)))
    # eps_root > 0: blank pixels give first-layer weights an exactly zero gradient (see the recipes' warning)
    optimizer = optax.adam(args.inner_lr, eps_root=1e-8) if args.inner_optimizer == "adam" else optax.sgd(args.inner_lr)
    problem = make_problem(graphdef, params0, load(args.train_size, args.seed), args.inner_steps, optimizer)
    # φ: an nnx.State like the parameters; strong decay everywhere, so the validation loss can improve
    phi = jax.tree_util.tree_map(lambda x: jnp.full_like(x, np.log(0.05)), params0)
    num_phi = sum(x.size for x in jax.tree_util.tree_leaves(phi))
    estimate = jax.jit(fj.FG2U(num_directions=args.directions))
    key = jax.random.PRNGKey(args.seed)

    g_exact, aux = jax.jit(fj.RGU())(problem, phi, None)
    g_fg2u, _ = estimate(problem, phi, key)
    assert isinstance(g_fg2u, nnx.State)  # the estimate has φ's structure
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

    print(f"meta-gradient cosine to RGU: {cos:.4f}  (FG2U, b = {args.directions}, N = {num_phi})")
    print(f"outer loss before: {before:.6f}")
    print(f"outer loss after: {after:.6f}")
    return {"cosine": cos, "before": before, "after": after}


if __name__ == "__main__":
    main()
