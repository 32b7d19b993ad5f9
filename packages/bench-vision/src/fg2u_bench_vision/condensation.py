"""Dataset condensation (performance matching) as an :class:`fg2u.UnrolledProblem`.

Meta parameters φ: the synthetic images, ``(num_classes · ipc, H, W, C)`` in ``[0, 1]``, with fixed
one-hot labels (class ``i // ipc`` for image ``i``).

Inner problem (θ = ConvNet parameters + SGD-momentum state, a fresh initialisation θ₀ every meta step):

    θ_{t+1} = Φ(θ_t, φ) = SGD-momentum step on ℓ(θ, φ) = CE(f_θ(φ), y_syn),  full synthetic batch,
    lr_t = η · ½(1 + cos(π t / T)) (cosine decay; the count is clamped at T−1, so the transition the
    implicit estimators linearise at θ_T is the last step actually taken), L2 weight decay added to the
    gradient.

Outer loss: L(φ) = CE(f_{θ_T(φ)}(x_real), y_real) on a random real batch.

After each Adam meta step φ is clipped to ``[0, 1]``.

The implicit estimators (Neumann, HessianFree) linearise Φ at θ_T, where the cosine schedule's lr is
η_{T−1} ≪ η; their estimate carries a factor ≈ η_{T−1} (∂Φ/∂φ = −η ∂²ℓ/∂θ∂φ). :func:`implicit_rescale`
returns 1/η_{T−1}; the benchmark's presets (:meth:`fg2u_bench_vision.experiment.Condensation.complete`) wrap them in
``fg2u.jax.Scaled(·, 1/η_{T−1})`` so that all estimators give meta-gradients in the same units (α = 1/η in the design doc's HessianFree convention). Adam is
invariant to this scalar apart from its ε.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fg2u
from fg2u._checks import check_positive_int

from .configs import Config
from .model import ConvNet, cross_entropy, default_depth, sample_params

__all__ = [
    "CondensationSetup",
    "setup_from_config",
    "synthetic_labels",
    "init_synthetic",
    "cosine_lr",
    "inner_optimizer",
    "make_problem",
    "implicit_rescale",
    "meta_optimizer",
    "sample_meta_inputs",
]


@dataclasses.dataclass(frozen=True)
class CondensationSetup:
    """Static description of the bi-level problem (hashable; safe to close over in ``jax.jit``).

    Attributes:
      model: the ConvNet (its ``num_classes`` is the number of classes).
      image_shape: ``(H, W, C)``.
      ipc: synthetic images per class.
      inner_steps: T.
      inner_lr: η (peak of the cosine schedule).
      inner_momentum: SGD momentum (0.9).
      weight_decay: L2 coefficient added to the inner gradient.
    """

    model: ConvNet
    image_shape: tuple[int, int, int]
    ipc: int
    inner_steps: int
    inner_lr: float
    inner_momentum: float = 0.9
    weight_decay: float = 1e-4

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    @property
    def num_synthetic(self) -> int:
        return self.num_classes * self.ipc


def setup_from_config(config: Config, image_shape: tuple[int, int, int], num_classes: int) -> CondensationSetup:
    """The :class:`CondensationSetup` of ``config`` for images of ``image_shape`` and ``num_classes`` classes."""
    depth = config.depth if config.depth is not None else default_depth(image_shape)
    model = ConvNet(num_classes=num_classes, width=config.width, depth=depth, norm_before_relu=config.norm_before_relu)
    return CondensationSetup(
        model=model,
        image_shape=tuple(int(s) for s in image_shape),
        ipc=config.ipc,  # type: ignore[arg-type]
        inner_steps=config.inner_steps,
        inner_lr=config.inner_lr,
        inner_momentum=config.inner_momentum,
        weight_decay=config.weight_decay,
    )


def synthetic_labels(num_classes: int, ipc: int) -> jax.Array:
    """``(num_classes · ipc,)`` int32: ``[0]*ipc + [1]*ipc + …``."""
    return jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), ipc)


def init_synthetic(rng: np.random.Generator, setup: CondensationSetup) -> np.ndarray:
    """φ₀ ~ U[0, 1], shape ``(num_classes · ipc, H, W, C)`` float32 (the paper's FG²U initialisation)."""
    return rng.uniform(0.0, 1.0, (setup.num_synthetic, *setup.image_shape)).astype(np.float32)


def cosine_lr(peak: float, num_steps: int) -> Callable[[Any], jax.Array]:
    """``count ↦ peak · ½(1 + cos(π min(count, T−1) / T))``: cosine decay over T steps, never exactly 0."""
    check_positive_int("num_steps", num_steps)

    def schedule(count: Any) -> jax.Array:
        t = jnp.minimum(jnp.asarray(count, jnp.float32), num_steps - 1)
        return peak * 0.5 * (1.0 + jnp.cos(jnp.pi * t / num_steps))

    return schedule


def inner_optimizer(
    lr: float, num_steps: int, momentum: float = 0.9, weight_decay: float = 1e-4
) -> optax.GradientTransformation:
    """SGD with momentum, cosine-decayed lr over ``num_steps``, L2 ``weight_decay · θ`` added to the gradient."""
    parts = []
    if weight_decay > 0:
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.sgd(cosine_lr(lr, num_steps), momentum=momentum if momentum > 0 else None))
    return optax.chain(*parts)


def implicit_rescale(setup: CondensationSetup) -> float:
    """``1 / η_{T−1}``: the factor that puts Neumann/HessianFree estimates in meta-gradient units."""
    t = setup.inner_steps - 1
    return 1.0 / (setup.inner_lr * 0.5 * (1.0 + math.cos(math.pi * t / setup.inner_steps)))


def make_problem(setup: CondensationSetup, params0: Any, real_x: jax.Array, real_y: jax.Array) -> fg2u.UnrolledProblem:
    """The condensation problem for one fresh network ``params0`` and one real batch ``(real_x, real_y)``.

    ``real_x: (B, H, W, C)``, ``real_y: (B,)`` int. The state is ``fg2u.jax.InnerState(params, opt_state)``.
    """
    from fg2u.jax import optax_transition  # noqa: PLC0415 (backend loaded lazily)

    model = setup.model
    labels = jax.nn.one_hot(synthetic_labels(setup.num_classes, setup.ipc), setup.num_classes)

    def inner_loss(params: Any, phi: jax.Array, batch: Any) -> jax.Array:
        del batch  # full synthetic set every step
        return cross_entropy(model.apply({"params": params}, phi), labels)

    optimizer = inner_optimizer(setup.inner_lr, setup.inner_steps, setup.inner_momentum, setup.weight_decay)
    init, step = optax_transition(inner_loss, optimizer, params0)

    def outer_loss(state: Any, phi: jax.Array, batch: Any) -> jax.Array:
        x, y = batch
        return cross_entropy(model.apply({"params": state.params}, x), y)

    return fg2u.UnrolledProblem(
        init=init, step=step, outer_loss=outer_loss, num_steps=setup.inner_steps, outer_batch=(real_x, real_y)
    )


@functools.cache
def meta_optimizer(config: Config) -> optax.GradientTransformation:
    """Adam with ``meta_lr``, linearly decayed to 0 over ``meta_steps`` (or constant)."""
    if config.meta_lr_schedule == "linear":
        lr = optax.linear_schedule(config.meta_lr, 0.0, config.meta_steps)
    else:
        lr = config.meta_lr
    return optax.adam(lr)


def sample_meta_inputs(
    setup: CondensationSetup,
    rng: np.random.Generator,
    x_train: np.ndarray,
    y_train: np.ndarray,
    real_batch: int,
    grad_accumulation: int = 1,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Host-side randomness of one meta step: ``grad_accumulation`` fresh networks θ₀ (leading axis) and as
    many real batches of ``real_batch`` images drawn without replacement:
    ``(params0, real_x (A, B, H, W, C), real_y (A, B))``."""
    params0 = sample_params(setup.model, setup.image_shape, rng, num=grad_accumulation)
    idx = np.stack([rng.choice(x_train.shape[0], real_batch, replace=False) for _ in range(grad_accumulation)])
    return params0, x_train[idx], y_train[idx]


def as_numpy_images(phi: jax.Array) -> np.ndarray:
    """φ as a host array (for plots and evaluation)."""
    return np.asarray(jax.device_get(phi))
