"""Implicit-differentiation estimators at the fixed point ``θ* = Φ(θ*, φ)``: Neumann, CG, Hessian-free.

All three take ``θ* ≈ θ_T`` (the unrolled state, not differentiated), evaluate Φ with the *last* inner batch
``inner_batches[T−1]``, and return

    ∇_φF + (∂Φ/∂φ)ᵀ w,      w ≈ (I − ∂Φ/∂θ)^{−T} ∇_θF,

computed with vector–Jacobian products only and fixed iteration counts. They differ only in how ``w`` is
solved for. Non-floating leaves of the inner state (e.g. optimiser step counters) are held constant;
``Aux.outer_loss`` is ``F(θ_T, φ)``. Memory: one inner step's vjp, independent of T. Bias: θ_T is not an exact
fixed point, and the solve is truncated.
"""

from __future__ import annotations

import dataclasses

from fg2u._checks import check_nonnegative_int, check_positive_float, check_positive_int
from fg2u.estimators.base import Estimator
from fg2u.estimators.registry import register

__all__ = ["Neumann", "ConjugateGradient", "HessianFree"]


@register("neumann")
@dataclasses.dataclass(frozen=True)
class Neumann(Estimator):
    """Implicit gradient with the truncated Neumann series (K = ``num_terms``)

        w = α Σ_{k=0}^{K} (I − α(I − ∂Φ/∂θ)ᵀ)^k ∇_θF,

    i.e. ``K`` extra vjps. Converges to ``(I − ∂Φ/∂θ)^{−T} ∇_θF`` when the spectral radius of
    ``I − α(I − ∂Φ/∂θ)`` is below one. ``num_terms = 0`` is :class:`HessianFree`.
    """

    num_terms: int
    alpha: float = 1.0
    check_finite: bool = False

    def __post_init__(self) -> None:
        check_nonnegative_int("num_terms (K, the number of Neumann terms)", self.num_terms)
        check_positive_float("alpha", self.alpha)


@register("conjugate_gradient")
@dataclasses.dataclass(frozen=True)
class ConjugateGradient(Estimator):
    """Implicit gradient with ``w`` from K = ``num_iterations`` conjugate-gradient iterations (from ``w_0 = 0``)
    on ``(I − ∂Φ/∂θ)ᵀ w = ∇_θF``. Valid when ``I − ∂Φ/∂θ`` is symmetric positive definite, e.g. a
    gradient-descent transition ``Φ = θ − η∇_θℓ`` with ``ηλ_max(∇²ℓ) < 2`` at a local minimum of ℓ.
    """

    num_iterations: int
    check_finite: bool = False

    def __post_init__(self) -> None:
        check_positive_int("num_iterations (K, the number of CG iterations)", self.num_iterations)


@register("hessian_free")
@dataclasses.dataclass(frozen=True)
class HessianFree(Estimator):
    """First-order implicit gradient with the inverse replaced by ``α I``: ``∇_φF + α (∂Φ/∂φ)ᵀ ∇_θF``.

    For ``Φ = θ − η∇_θℓ`` and ``α = 1/η`` this is ``∇_φF − ∂²ℓ/∂φ∂θ · ∇_θF``. Equals ``Neumann(0, α)``.
    """

    alpha: float = 1.0
    check_finite: bool = False

    def __post_init__(self) -> None:
        check_positive_float("alpha", self.alpha)
