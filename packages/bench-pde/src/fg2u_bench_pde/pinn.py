"""PINN inner problem: an MLP ``u_θ(t, x)`` trained by SGD on the PDE residual with coefficient c(φ).

Network (Table F.3): ``depth`` = 9 dense layers — 8 hidden layers of width 20 with tanh and a linear
output — Glorot-normal weights, zero biases, from a fixed key (the same θ₀ for every φ). The initial
condition is built into the output, ``u_θ(t, x) = u0(x) + t·g(t, x)``, so it holds exactly:

* Burgers, Allen-Cahn: ``g = (1 − x²)·MLP(t, x)`` — also enforces the Dirichlet values u(t, ±1) = u0(±1)
  (0 and −1) exactly;
* KdV (and the periodic Allen-Cahn variant): ``g = MLP(t, cos πx, sin πx)`` — exactly 2-periodic in x.

Inner loss on a collocation batch ``(B, 2)`` of ``(t, x)``: ``mean r²`` with the residual

  Burgers  r = u_t + u u_x − c u_xx,   Allen-Cahn  r = u_t − c u_xx − 5(u − u³),   KdV  r = u_t + u u_x + c u_xxx,

derivatives by nested forward-mode ``jax.jvp``. Inner optimiser: plain SGD (paper: lr 1e-3, T = 1000,
B = 5000), as :func:`fg2u.jax.optax_transition`. Outer loss: mean squared misfit of ``u_θT`` at the
observations. φ enters only through the inner loss, so ∂F/∂φ = 0 and dL/dφ flows through the unroll.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fg2u import UnrolledProblem
from fg2u_bench_pde.checks import check_positive_float, check_positive_int
from fg2u_bench_pde.equations import Equation, coefficient_from_phi
from fg2u_bench_pde.observations import Observations

__all__ = [
    "PinnSettings",
    "init_mlp",
    "pinn_apply",
    "residual",
    "pinn_problem",
    "pinn_prediction",
    "collocation_batches",
]


@dataclasses.dataclass(frozen=True)
class PinnSettings:
    """PINN and inner-loop settings (Table F.3 defaults)."""

    depth: int = 9
    width: int = 20
    inner_steps: int = 1000
    inner_lr: float = 1e-3
    batch_size: int = 5000
    init_seed: int = 0

    def __post_init__(self) -> None:
        check_positive_int("depth", self.depth)
        if self.depth < 2:
            raise ValueError(f"depth must be >= 2 (at least one hidden layer), got {self.depth}")
        check_positive_int("width", self.width)
        check_positive_int("inner_steps", self.inner_steps)
        check_positive_float("inner_lr", self.inner_lr)
        check_positive_int("batch_size", self.batch_size)


def _dirichlet(equation: Equation) -> bool:
    return equation.name == "burgers" or equation.boundary == "dirichlet"


def _num_inputs(equation: Equation) -> int:
    return 2 if _dirichlet(equation) else 3


def init_mlp(key, equation: Equation, settings: PinnSettings, dtype=None) -> list:
    """``[(W_l, b_l)]``, ``W_l: (n_in, n_out)``, Glorot-normal, zero biases."""
    dtype = dtype or jnp.result_type(float)
    sizes = [_num_inputs(equation)] + [settings.width] * (settings.depth - 1) + [1]
    params = []
    for key_l, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        std = math.sqrt(2.0 / (n_in + n_out))
        params.append((std * jax.random.normal(key_l, (n_in, n_out), dtype), jnp.zeros((n_out,), dtype)))
    return params


def pinn_apply(params, equation: Equation, t, x):
    """``u_θ(t, x)`` for scalars (vmap for batches)."""
    if _dirichlet(equation):
        h = jnp.stack([t, x])
    else:
        h = jnp.stack([t, jnp.cos(math.pi * x), jnp.sin(math.pi * x)])
    for w, b in params[:-1]:
        h = jnp.tanh(h @ w + b)
    w, b = params[-1]
    g = (h @ w + b)[0]
    if _dirichlet(equation):
        g = (1.0 - x**2) * g
    return equation.initial_condition(x) + t * g


def residual(params, equation: Equation, coefficient, t, x):
    """PDE residual at one point ``(t, x)`` (see the module docstring)."""
    f = lambda tt, xx: pinn_apply(params, equation, tt, xx)  # noqa: E731
    one = jnp.ones_like(x)
    u, u_t = jax.jvp(lambda tt: f(tt, x), (t,), (one,))
    d1 = lambda xx: jax.jvp(lambda y: f(t, y), (xx,), (one,))[1]  # noqa: E731
    d2 = lambda xx: jax.jvp(d1, (xx,), (one,))[1]  # noqa: E731
    u_x = d1(x)
    if equation.name == "burgers":
        return u_t + u * u_x - coefficient * d2(x)
    if equation.name.startswith("allen_cahn"):
        return u_t - coefficient * d2(x) - 5.0 * (u - u**3)
    u_xxx = jax.jvp(d2, (x,), (one,))[1]
    return u_t + u * u_x + coefficient * u_xxx


def collocation_batches(seed: int, num_steps: int, batch_size: int, dtype=None) -> jax.Array:
    """``(T, B, 2)`` uniform points ``(t, x) ∈ [0, 1] × [−1, 1)``, seeded."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(size=(num_steps, batch_size, 2))
    pts[..., 1] = 2.0 * pts[..., 1] - 1.0
    return jnp.asarray(pts, dtype=dtype or jnp.result_type(float))


def pinn_problem(
    equation: Equation,
    settings: PinnSettings,
    parametrisation: str,
    observations: Observations,
    collocation_seed: int = 0,
) -> UnrolledProblem:
    """The PINN bi-level problem: θ₀ fixed, ``T = settings.inner_steps`` SGD steps, outer misfit."""
    from fg2u.jax import optax_transition

    params0 = init_mlp(jax.random.PRNGKey(settings.init_seed), equation, settings)

    def inner_loss(params, phi, batch):
        c = coefficient_from_phi(phi, parametrisation)
        r = jax.vmap(lambda p: residual(params, equation, c, p[0], p[1]))(batch)
        return jnp.mean(r**2)

    def outer_loss(state, phi, obs):
        u = jax.vmap(lambda t, x: pinn_apply(state.params, equation, t, x))(obs["t"], obs["x"])
        return jnp.mean((u - obs["u"]) ** 2)

    init, step = optax_transition(inner_loss, optax.sgd(settings.inner_lr), params0)
    fdtype = jnp.result_type(float)
    return UnrolledProblem(
        init=init,
        step=step,
        outer_loss=outer_loss,
        num_steps=settings.inner_steps,
        inner_batches=collocation_batches(collocation_seed, settings.inner_steps, settings.batch_size),
        outer_batch={
            "t": jnp.asarray(observations.t, fdtype),
            "x": jnp.asarray(observations.x, fdtype),
            "u": jnp.asarray(observations.u, fdtype),
        },
    )


def pinn_prediction(params, equation: Equation, t, x) -> jax.Array:
    """``u_θ`` on the grid ``t (n_t,) × x (n_x,)``: ``(n_t, n_x)``."""
    tt, xx = jnp.meshgrid(jnp.asarray(t), jnp.asarray(x), indexing="ij")
    return jax.vmap(lambda a, b: pinn_apply(params, equation, a, b))(tt.ravel(), xx.ravel()).reshape(tt.shape)
