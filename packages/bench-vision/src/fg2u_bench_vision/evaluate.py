"""Evaluation protocol: train fresh ConvNets on a (condensed) training set, report test accuracy.

* :func:`evaluate_condensed` — ``num_nets`` freshly initialised networks, each trained ``steps``
  full-batch steps on the condensed set with the inner optimiser (SGD momentum 0.9, cosine lr, L2),
  test accuracy mean ± std (population std over the networks).
* :func:`whole_dataset_reference` — the same network trained on the whole training set with
  mini-batches (the "whole data set" upper reference of Table 1).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .condensation import inner_optimizer
from .model import ConvNet, cross_entropy, sample_params

__all__ = ["train_network", "test_accuracy", "evaluate_condensed", "whole_dataset_reference"]


def train_network(
    model: ConvNet,
    rng: np.random.Generator,
    x: Any,
    y: Any,
    *,
    steps: int,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    batch_size: int | None = None,
    num_nets: int = 1,
) -> Any:
    """Trains ``num_nets`` fresh networks on ``(x, y)`` (``x: (N, H, W, C)``, ``y: (N,)`` int), vmapped.

    Initial parameters and mini-batch indices are drawn from ``rng`` on the host. ``batch_size=None``
    (or ≥ N): full batch every step; otherwise uniform random mini-batches (with replacement).
    Returns params with a leading axis ``num_nets``.
    """
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y, jnp.int32)
    image_shape = tuple(int(s) for s in x.shape[1:])
    params = sample_params(model, image_shape, rng, num=num_nets)
    full = batch_size is None or batch_size >= x.shape[0]
    if full:
        idx = np.zeros((num_nets, steps, 0), np.int32)
    else:
        idx = rng.integers(0, x.shape[0], (num_nets, steps, int(batch_size)), dtype=np.int32)
    fn = _train_fn(model, int(steps), float(lr), float(momentum), float(weight_decay), full)
    return fn(params, x, y, idx)


@functools.cache
def _train_fn(model, steps, lr, momentum, weight_decay, full):
    optimizer = inner_optimizer(lr, steps, momentum, weight_decay)

    def loss_fn(p, xb, yb):
        return cross_entropy(model.apply({"params": p}, xb), yb)

    def run(params, x, y, idx):
        def body(carry, batch_idx):
            p, s = carry
            xb, yb = (x, y) if full else (x[batch_idx], y[batch_idx])
            g = jax.grad(loss_fn)(p, xb, yb)
            updates, s = optimizer.update(g, s, p)
            return (optax.apply_updates(p, updates), s), None

        (p, _), _ = jax.lax.scan(body, (params, optimizer.init(params)), idx)
        return p

    return jax.jit(jax.vmap(run, in_axes=(0, None, None, 0)))


@functools.cache
def _apply_fn(model):
    return jax.jit(lambda p, xb: model.apply({"params": p}, xb))


def test_accuracy(model: ConvNet, params: Any, x_test: Any, y_test: Any, batch: int = 1000) -> float:
    """Accuracy of ``params`` on ``(x_test, y_test)``, evaluated in batches of ``batch``."""
    apply = _apply_fn(model)
    correct = 0
    for start in range(0, len(y_test), batch):
        xb = jnp.asarray(x_test[start : start + batch], jnp.float32)
        yb = np.asarray(y_test[start : start + batch])
        correct += int(np.sum(np.argmax(np.asarray(apply(params, xb)), -1) == yb))
    return correct / max(len(y_test), 1)


def evaluate_condensed(
    model: ConvNet,
    x_syn: Any,
    y_syn: Any,
    x_test: Any,
    y_test: Any,
    rng: np.random.Generator,
    *,
    num_nets: int,
    steps: int,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
) -> dict[str, Any]:
    """Test accuracy of ``num_nets`` fresh networks trained on the condensed set.

    Returns ``{"mean", "std", "accuracies"}`` (fractions in [0, 1]).
    """
    stacked = train_network(
        model, rng, x_syn, y_syn, steps=steps, lr=lr, momentum=momentum, weight_decay=weight_decay, num_nets=num_nets
    )
    accs = [test_accuracy(model, _index(stacked, i), x_test, y_test) for i in range(num_nets)]
    accs_np = np.asarray(accs)
    return {"mean": float(accs_np.mean()), "std": float(accs_np.std()), "accuracies": [float(a) for a in accs]}


def whole_dataset_reference(
    model: ConvNet,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    rng: np.random.Generator,
    *,
    num_nets: int,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
) -> dict[str, Any]:
    """Test accuracy of ``num_nets`` networks trained on the whole training set (``epochs`` epochs of
    random mini-batches of ``batch_size``). Returns ``{"mean", "std", "accuracies"}``."""
    steps = max(1, int(np.ceil(epochs * len(y_train) / batch_size)))
    stacked = train_network(
        model,
        rng,
        x_train,
        y_train,
        steps=steps,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        batch_size=batch_size,
        num_nets=num_nets,
    )
    accs = [test_accuracy(model, _index(stacked, i), x_test, y_test) for i in range(num_nets)]
    accs_np = np.asarray(accs)
    return {
        "mean": float(accs_np.mean()),
        "std": float(accs_np.std()),
        "accuracies": [float(a) for a in accs],
        "steps": steps,
    }


def _index(tree: Any, i: int) -> Any:
    return jax.tree_util.tree_map(lambda a: a[i], tree)
