"""The paper's zeroth-order estimator: a fixed quadrature of directions instead of random ones.

The (FG)²U paper's PDE experiments (from the authors' released code, see
/work/shared/docs/paper-settings.md) estimate the gradient of the black-box loss with a fixed grid of
``K = 12`` directions ``v_k`` equispaced in ``[−5, 5]``, weighted by ``w = softmax(−v²/2)`` (a quadrature
of the Gaussian expectation ``E_v[v v^T] ∇L = ∇L``), and a forward difference with ε = 1e-4:

    ĝ = Σ_k w_k (L(φ + ε v_k) − L(φ))/ε · v_k          (K + 1 = 13 solves per step; "central": 2K)

For d > 1 unknowns the grid is applied along each coordinate axis (``d·K + 1`` solves), which is the
same quadrature with a diagonal covariance. The estimate is deterministic (the key is ignored).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from fg2u.estimator import Aux
from fg2u.estimators import Estimator
from fg2u_bench_pde.checks import check_choice, check_positive_float, check_positive_int

__all__ = ["FixedQuadratureZO"]


@dataclasses.dataclass(frozen=True)
class FixedQuadratureZO(Estimator):
    """Deterministic zeroth-order gradient of a :class:`fg2u.BlackBoxProblem` (module docstring).

    A stateless estimator of the core protocol (:class:`fg2u.estimators.Estimator`): ``__call__(problem, phi,
    key) -> (grad, Aux)`` and ``estimate(problem, phi, key, state) -> (grad, Aux, state)``; φ a 0-d or 1-d
    array, grad of the same shape. A benchmark baseline, not in the core's registry.
    """

    num_points: int = 12
    half_width: float = 5.0
    eps: float = 1e-4
    scheme: str = "forward"

    def __post_init__(self) -> None:
        check_positive_int("num_points", self.num_points)
        check_positive_float("half_width", self.half_width)
        check_positive_float("eps", self.eps)
        check_choice("scheme", self.scheme, ("forward", "central"))

    def nodes_and_weights(self, dtype=None) -> tuple[jax.Array, jax.Array]:
        """``v (K,)`` equispaced in [−half_width, half_width] and ``w = softmax(−v²/2) (K,)``."""
        v = jnp.linspace(-self.half_width, self.half_width, self.num_points, dtype=dtype or jnp.result_type(float))
        return v, jax.nn.softmax(-0.5 * v**2)

    def solves_per_step(self, dimension: int) -> int:
        """Solver calls of one estimate for ``dimension`` unknowns."""
        return dimension * self.num_points * (1 if self.scheme == "forward" else 2) + (self.scheme == "forward")

    def __call__(self, problem: Any, phi, key: Any = None) -> tuple[jax.Array, Aux]:
        phi = jnp.asarray(phi)
        if phi.ndim > 1:
            raise ValueError(f"FixedQuadratureZO needs a 0-d or 1-d phi, got shape {phi.shape}")
        v, w = self.nodes_and_weights(phi.dtype)
        flat = phi.reshape(-1)
        d = flat.size
        # directions: each node along each axis, shape (d·K, d)
        dirs = (jnp.eye(d, dtype=phi.dtype)[:, None, :] * v[None, :, None]).reshape(d * v.size, d)
        weights = jnp.tile(w, d)
        objective = lambda p: problem.objective(p.reshape(phi.shape), problem.data)  # noqa: E731
        plus = jax.lax.map(lambda u: objective(flat + self.eps * u), dirs)
        if self.scheme == "forward":
            base = objective(flat)
            slopes = (plus - base) / self.eps
        else:
            minus = jax.lax.map(lambda u: objective(flat - self.eps * u), dirs)
            slopes = (plus - minus) / (2 * self.eps)
            base = 0.5 * jnp.mean(plus + minus)
        grad = jnp.sum((weights * slopes)[:, None] * dirs, axis=0)
        return grad.reshape(phi.shape), Aux(outer_loss=base)
