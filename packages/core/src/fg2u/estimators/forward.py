"""Forward-mode estimators: FG²U, FG²U-ZO (finite differences) and FGU (the exact forward Jacobian)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fg2u.checks import check_choice, check_positive_float
from fg2u.directions import DirectionDistribution, check_direction_settings
from fg2u.estimator import Aux
from fg2u.estimators.base import Estimator
from fg2u.estimators.registry import register

PyTree = Any

__all__ = ["FG2U", "FG2U_ZO", "FGU", "RandomDirections"]


class RandomDirections(Estimator):
    """Mixin of the estimators that average over b random directions (FG2U, FG2U_ZO).

    Backends implement ``with_directions(problem, φ, directions)``: the estimate for explicit directions (a
    pytree like φ whose leaves have a leading axis b), which the distributed wrappers use.
    """

    num_directions: int  # fields of the concrete dataclasses (annotations only: this mixin is no dataclass)
    distribution: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("_abstract", False) and "with_directions" not in cls.__dict__:
            # a kernel (a subclass of a registered settings class) must estimate for given directions too
            if any(b.__dict__.get("_abstract", False) for b in cls.__mro__[1:]):
                raise TypeError(f"{cls.__qualname__} must implement with_directions(problem, phi, directions)")

    def with_directions(self, problem: Any, phi: PyTree, directions: PyTree) -> tuple[PyTree, Aux]:
        """The estimate for explicit ``directions`` (pytree like φ, every leaf with a leading axis b)."""
        raise NotImplementedError(f"{type(self).__name__} implements no with_directions")


@register("fg2u")
@dataclasses.dataclass(frozen=True)
class FG2U(RandomDirections):
    """(FG)²U: ``ĝ = (1/b) Σ_{i<b} (∇L(φ)·v_i) v_i`` with ``E[v vᵀ] = I``, so ``E[ĝ] = ∇L(φ)``.

    Each directional derivative ``∇L·v_i`` is one forward-mode pass (a jvp) through the whole unroll, which
    carries only ``(θ_t, dθ_t/dφ·v)``: the memory does not grow with the unroll depth T. Directions are
    vectorised inside chunks of ``chunk_size`` and the chunks run one after the other, so the working memory
    is ∝ ``chunk_size``; ``None`` → all b at once.

    For Rademacher directions ``E‖ĝ − ∇L‖² = (N − 1)/b · ‖∇L‖²`` (Lemma 3.1 bounds it by ``(N+1)/b``).
    Memory: O(|θ| + |φ|) per direction in a chunk, independent of T. Bias: none.

    Args:
      num_directions: b ≥ 1.
      distribution: ``"rademacher"``, ``"gaussian"``, ``"sphere"``, ``"orthogonal"`` or a
        [`fg2u.directions.DirectionDistribution`][fg2u.directions.DirectionDistribution].
      chunk_size: directions per vectorised chunk, or ``None``.
      check_finite: raise ``FloatingPointError`` naming the estimator on NaN/inf in the estimate or loss.

    Backend notes: JAX uses ``jax.jvp`` through a ``lax.scan`` and draws each Rademacher / Gaussian / sphere
    direction from its own fold of the key inside its chunk, so the memory does not grow with b and a key gives
    the same estimate for every ``chunk_size`` (orthogonal and custom distributions are drawn all at once).
    PyTorch propagates the tangents step by step with the double-vjp trick (a graph of one step at a time;
    several directions share the pass) and falls back to ``torch.func.jvp`` through the unroll when a step
    cannot be differentiated twice by autograd (a ``RuntimeWarning`` says so; same result, slower).

    References:
      Shen, Q., Wang, Y., Yang, Z., et al. (2024). Memory-Efficient Gradient Unrolling for Large-Scale Bi-level
      Optimization. NeurIPS 2024. https://arxiv.org/abs/2406.14095
    """

    num_directions: int = 1
    distribution: str | DirectionDistribution = "rademacher"
    chunk_size: int | None = None
    check_finite: bool = False

    @property
    def bias(self) -> str:
        return "unbiased"

    example = "num_directions=8"

    def __post_init__(self) -> None:
        check_direction_settings(self.num_directions, self.distribution, self.chunk_size)


@register("fg2u_zo")
@dataclasses.dataclass(frozen=True)
class FG2U_ZO(RandomDirections):
    """Zeroth-order (FG)²U: the directional derivative replaced by a finite difference of L.

    * ``scheme="forward"``: ``ĝ = (1/b) Σ_i (L(φ+εv_i) − L(φ))/ε · v_i``, bias ``O(ε)`` (b + 1 evaluations).
    * ``scheme="central"``: ``ĝ = (1/b) Σ_i (L(φ+εv_i) − L(φ−εv_i))/(2ε) · v_i``, bias ``O(ε²)`` (2b evaluations).

    Works on a [`fg2u.BlackBoxProblem`][fg2u.problem.BlackBoxProblem] (only L(φ) can be evaluated: an external solver, a
    simulator) or on an [`fg2u.UnrolledProblem`][fg2u.problem.UnrolledProblem]. ``Aux.outer_loss`` is ``L(φ)`` for the
    forward scheme and the mean of the ``2b`` perturbed values for the central one. Use float64 φ for small ``eps``: the
    rounding error of the difference is ``O(u·|L|/ε)`` with ``u`` the unit roundoff.

    Backend notes: in JAX the objective must be traceable — wrap an external solver in
    ``jax.pure_callback(..., vmap_method="sequential")``; in PyTorch a black-box objective may be any Python
    code returning a scalar (evaluated once per perturbation, never vmapped).

    References:
      Shen, Q., Wang, Y., Yang, Z., et al. (2024). Memory-Efficient Gradient Unrolling for Large-Scale Bi-level
      Optimization (the zeroth-order variant, (FG)²U-ZO). NeurIPS 2024. https://arxiv.org/abs/2406.14095
    """

    num_directions: int = 1
    eps: float = 1e-4
    scheme: str = "forward"
    distribution: str | DirectionDistribution = "rademacher"
    chunk_size: int | None = None
    check_finite: bool = False

    @property
    def bias(self) -> str:
        """``"unbiased"`` up to the finite difference's O(ε) (forward) or O(ε²) (central) bias."""
        return "unbiased"

    example = "num_directions=8, eps=1e-3"

    def __post_init__(self) -> None:
        check_direction_settings(self.num_directions, self.distribution, self.chunk_size)
        check_positive_float("eps (the finite-difference step)", self.eps)
        check_choice("scheme", self.scheme, ("forward", "central"))


@register("fgu")
@dataclasses.dataclass(frozen=True)
class FGU(Estimator):
    """Exact ``∇L(φ)`` by forward mode: N jvps through the unroll along the standard basis of φ (the full
    forward Jacobian).

    Memory is flat in T like FG²U but the cost is N unrolls: a reference for small N. Bias: none (exact).

    References:
      Franceschi, L., Donini, M., Frasconi, P., Pontil, M. (2017). Forward and Reverse Gradient-Based
      Hyperparameter Optimization (forward-mode hypergradients). ICML 2017. https://arxiv.org/abs/1703.01785
    """

    check_finite: bool = False

    @property
    def bias(self) -> str:
        return "exact"
