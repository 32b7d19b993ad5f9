"""Implicit differentiation at the fixed point ``θ* = Φ(θ*, φ)``: one estimator, [`Implicit`][fg2u.estimators.Implicit],
with a pluggable linear solve (as in JAXopt), and the registry aliases ``neumann``, ``conjugate_gradient`` and
``hessian_free``.

[`Implicit`][fg2u.estimators.Implicit] takes ``θ* ≈ θ_T`` (the unrolled state, not differentiated), evaluates Φ with the
*last* inner batch ``inner_batches[T−1]``, and returns

    ∇_φF + (∂Φ/∂φ)ᵀ w,      w ≈ (I − ∂Φ/∂θ)^{−T} ∇_θF,

computed with vector–Jacobian products only and fixed iteration counts. The solve for ``w`` is a small frozen
settings object; each backend supplies only its numeric kernel over the matrix-free operator
``u ↦ (I − ∂Φ/∂θ)ᵀ u`` (one vjp of Φ):

| solve | ``w`` | vjps | record name (registry alias) |
|---|---|---|---|
| [`NeumannSolve`][fg2u.estimators.NeumannSolve] ``(K, α)`` | ``α Σ_{k=0}^{K} (I − α(I − ∂Φ/∂θ)ᵀ)^k ∇_θF`` | K |
``Neumann`` (``neumann``) |
| [`ConjugateGradientSolve`][fg2u.estimators.ConjugateGradientSolve] ``(K)`` | K CG iterations from ``w_0 = 0`` | K |
``ConjugateGradient`` (``conjugate_gradient``) |
| [`IdentitySolve`][fg2u.estimators.IdentitySolve] ``(α)`` | ``α ∇_θF`` (the inverse replaced by ``α I``) | 0 |
``HessianFree`` (``hessian_free``) |

An [`Implicit`][fg2u.estimators.Implicit] estimator is named in records after its solve, with the solve's settings
flattened: ``Implicit(solve=neumann(5))`` and the alias ``Neumann(5)`` (``make("neumann", num_terms=5)``) are the same
estimator, record ``{"estimator": "Neumann", "num_terms": 5, "alpha": 1.0, "check_finite": False}``.

Non-floating leaves of the inner state (e.g. optimiser step counters) are held constant; ``Aux.outer_loss`` is
``F(θ_T, φ)``. Memory: one inner step's vjp, independent of T. Bias: θ_T is not an exact fixed point, and the
solve is truncated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from fg2u.checks import check_nonnegative_int, check_positive_float, check_positive_int
from fg2u.estimators.base import Estimator, describe_settings
from fg2u.estimators.registry import Alias, normalise_name, register, register_alias

__all__ = [
    "Implicit",
    "LinearSolve",
    "NeumannSolve",
    "ConjugateGradientSolve",
    "IdentitySolve",
    "neumann",
    "conjugate_gradient",
    "identity",
    "as_solve",
    "Neumann",
    "ConjugateGradient",
    "HessianFree",
]


class LinearSolve:
    """Base of the solve settings of [`Implicit`][fg2u.estimators.Implicit] (frozen dataclasses).

    Class attributes:
      name: the solve's name (``"neumann"``), for ``Implicit(solve="identity")`` or ``{"name": ..., ...}``.
      display: the record name of an [`Implicit`][fg2u.estimators.Implicit] estimator with this solve (``"Neumann"``).
    """

    name: ClassVar[str] = ""
    display: ClassVar[str] = ""


@dataclasses.dataclass(frozen=True)
class NeumannSolve(LinearSolve):
    """The truncated Neumann series ``w = α Σ_{k=0}^{K} (I − α(I − ∂Φ/∂θ)ᵀ)^k ∇_θF``, ``K = num_terms`` vjps.

    Converges to ``(I − ∂Φ/∂θ)^{−T} ∇_θF`` when the spectral radius ρ of ``I − α(I − ∂Φ/∂θ)`` is below one, with
    error ``O(ρ^{K+1}/(1 − ρ))``: for ``α = 1`` whenever Φ is a contraction in θ (the condition under which the
    unroll itself converges to θ*). ``num_terms = 0`` is [`IdentitySolve`][fg2u.estimators.IdentitySolve] ``(α)``.
    """

    num_terms: int
    alpha: float = 1.0
    name: ClassVar[str] = "neumann"
    display: ClassVar[str] = "Neumann"

    def __post_init__(self) -> None:
        check_nonnegative_int("num_terms (K, the number of Neumann terms)", self.num_terms)
        check_positive_float("alpha", self.alpha)


@dataclasses.dataclass(frozen=True)
class ConjugateGradientSolve(LinearSolve):
    """``w`` from ``K = num_iterations`` conjugate-gradient iterations (from ``w_0 = 0``) on
    ``(I − ∂Φ/∂θ)ᵀ w = ∇_θF``, one vjp each.

    Valid when ``I − ∂Φ/∂θ`` is symmetric positive definite, e.g. a gradient-descent transition
    ``Φ = θ − η∇_θℓ`` with ``ηλ_max(∇²ℓ) < 2`` at a local minimum of ℓ; exact after ``dim θ`` iterations
    (in exact arithmetic).
    """

    num_iterations: int
    name: ClassVar[str] = "conjugate_gradient"
    display: ClassVar[str] = "ConjugateGradient"

    def __post_init__(self) -> None:
        check_positive_int("num_iterations (K, the number of CG iterations)", self.num_iterations)


@dataclasses.dataclass(frozen=True)
class IdentitySolve(LinearSolve):
    """The inverse replaced by ``α I``: ``w = α ∇_θF`` (no vjp). The gradient is then the first-order
    (Hessian-free) ``∇_φF + α (∂Φ/∂φ)ᵀ ∇_θF``; for ``Φ = θ − η∇_θℓ`` and ``α = 1/η`` it is
    ``∇_φF − ∂²ℓ/∂φ∂θ · ∇_θF``. Equals [`NeumannSolve`][fg2u.estimators.NeumannSolve] ``(0, α)``.
    """

    alpha: float = 1.0
    name: ClassVar[str] = "identity"
    display: ClassVar[str] = "HessianFree"

    def __post_init__(self) -> None:
        check_positive_float("alpha", self.alpha)


# the solves as the lower-case constructors of the JAXopt-style spelling: Implicit(solve=neumann(10, alpha=0.5))
neumann = NeumannSolve
conjugate_gradient = ConjugateGradientSolve
identity = IdentitySolve

SOLVES: dict[str, type[LinearSolve]] = {
    "neumann": NeumannSolve,
    "conjugate_gradient": ConjugateGradientSolve,
    "cg": ConjugateGradientSolve,
    "identity": IdentitySolve,
}


def as_solve(value: Any) -> LinearSolve:
    """A [`LinearSolve`][fg2u.estimators.LinearSolve] from a solve object, a name (``"identity"``) or ``{"name": ...,
    **settings}``."""
    if isinstance(value, LinearSolve):
        return value
    settings: dict[str, Any] = {}
    if isinstance(value, Mapping):
        settings = dict(value)
        if "name" not in settings:
            raise ValueError(f"a solve given as a mapping needs a 'name' key ({', '.join(SOLVES)}), got {value!r}")
        value = settings.pop("name")
    if isinstance(value, str):
        try:
            cls = SOLVES[normalise_name(value)]
        except KeyError:
            raise ValueError(f"unknown solve {value!r}; choose one of {', '.join(SOLVES)}") from None
        return cls(**settings)
    raise TypeError(
        "solve must be fg2u.estimators.neumann(num_terms, alpha), conjugate_gradient(num_iterations) or "
        f"identity(alpha), a solve name or {{'name': ..., **settings}}; got {type(value).__name__}: {value!r}"
    )


@register("implicit")
@dataclasses.dataclass(frozen=True)
class Implicit(Estimator):
    """Implicit gradient at ``θ* ≈ θ_T``: ``∇_φF + (∂Φ/∂φ)ᵀ w`` with ``w ≈ (I − ∂Φ/∂θ)^{−T} ∇_θF`` from ``solve``.

    Args:
      solve: [`neumann`][fg2u.estimators.NeumannSolve] ``(num_terms, alpha)``,
        [`conjugate_gradient`][fg2u.estimators.ConjugateGradientSolve] ``(num_iterations)`` or
        [`identity`][fg2u.estimators.IdentitySolve] ``(alpha)`` (see the module docstring), a solve name, or ``{"name":
        ..., **settings}``.
        Default: ``neumann(10)``, which converges whenever the inner map is a contraction.
      check_finite: raise ``FloatingPointError`` naming the estimator on NaN/inf in the estimate or loss.

    Records name the estimator after its solve (``Neumann``, ``ConjugateGradient``, ``HessianFree``), with the
    solve's settings flattened (`settings`), exactly as the aliases [`Neumann`][fg2u.estimators.Neumann],
    [`ConjugateGradient`][fg2u.estimators.ConjugateGradient] and [`HessianFree`][fg2u.estimators.HessianFree] build it.

    Memory: one inner step's vjp (independent of T). Bias: θ_T is not an exact fixed point, and the solve is
    truncated.

    References:
      Blondel, M., Berthet, Q., Cuturi, M., et al. (2022). Efficient and Modular Implicit Differentiation
      (JAXopt's pluggable linear solves). NeurIPS 2022. https://arxiv.org/abs/2105.15183
      Lorraine, J., Vicol, P., Duvenaud, D. (2020). Optimizing Millions of Hyperparameters by Implicit
      Differentiation (the Neumann series). AISTATS 2020. https://arxiv.org/abs/1911.02590
      Rajeswaran, A., Finn, C., Kakade, S., Levine, S. (2019). Meta-Learning with Implicit Gradients (iMAML,
      conjugate gradient). NeurIPS 2019. https://arxiv.org/abs/1909.04630
      Shen, Q., Wang, Y., Yang, Z., et al. (2024). Memory-Efficient Gradient Unrolling for Large-Scale Bi-level
      Optimization (the Hessian-free baseline). NeurIPS 2024. https://arxiv.org/abs/2406.14095
    """

    solve: LinearSolve = NeumannSolve(10)
    check_finite: bool = False
    example = "solve=neumann(num_terms=10)"

    def __post_init__(self) -> None:
        object.__setattr__(self, "solve", as_solve(self.solve))

    @property
    def display_name(self) -> str:
        """The solve's record name: ``Neumann``, ``ConjugateGradient`` or ``HessianFree``."""
        return self.solve.display

    def settings(self) -> dict[str, Any]:
        """``{"estimator": the solve's record name, **the solve's settings, "check_finite": …}`` (JSON)."""
        out: dict[str, Any] = {"estimator": self.display_name}
        for field in dataclasses.fields(self.solve):  # type: ignore[arg-type]
            out[field.name] = describe_settings(getattr(self.solve, field.name))
        out["check_finite"] = self.check_finite
        return out


def _implicit_alias(name: str, solve: type[LinearSolve], doc: str) -> Alias:
    """The registered alias ``name``: its settings are ``solve``'s fields plus ``check_finite``; it builds
    ``Implicit(solve=solve(**settings), check_finite=check_finite)``."""

    def build(check_finite: bool = False, **solve_settings: Any) -> dict[str, Any]:
        return {"solve": solve(**solve_settings), "check_finite": check_finite}

    fields = (*dataclasses.fields(solve), *(f for f in dataclasses.fields(Implicit) if f.name == "check_finite"))  # type: ignore[arg-type]
    return register_alias(Alias(name, solve.display, Implicit, fields, build, doc, __name__))


Neumann = _implicit_alias(
    "neumann",
    NeumannSolve,
    """``Implicit(solve=neumann(num_terms, alpha), check_finite)``: the implicit gradient with the truncated
    Neumann series ``w = α Σ_{k=0}^{K} (I − α(I − ∂Φ/∂θ)ᵀ)^k ∇_θF`` (K = ``num_terms`` extra vjps).

    Converges to ``(I − ∂Φ/∂θ)^{−T} ∇_θF`` when the spectral radius of ``I − α(I − ∂Φ/∂θ)`` is below one.
    ``num_terms = 0`` is [`HessianFree`][fg2u.estimators.HessianFree]. Records: ``Neumann``.

    References:
      Lorraine, J., Vicol, P., Duvenaud, D. (2020). Optimizing Millions of Hyperparameters by Implicit
      Differentiation. AISTATS 2020. https://arxiv.org/abs/1911.02590
    """,
)

ConjugateGradient = _implicit_alias(
    "conjugate_gradient",
    ConjugateGradientSolve,
    """``Implicit(solve=conjugate_gradient(num_iterations), check_finite)``: the implicit gradient with ``w`` from
    K = ``num_iterations`` conjugate-gradient iterations on ``(I − ∂Φ/∂θ)ᵀ w = ∇_θF``.

    Valid when ``I − ∂Φ/∂θ`` is symmetric positive definite, e.g. a gradient-descent transition
    ``Φ = θ − η∇_θℓ`` with ``ηλ_max(∇²ℓ) < 2`` at a local minimum of ℓ. Records: ``ConjugateGradient``.

    References:
      Rajeswaran, A., Finn, C., Kakade, S., Levine, S. (2019). Meta-Learning with Implicit Gradients. NeurIPS
      2019. https://arxiv.org/abs/1909.04630
    """,
)

HessianFree = _implicit_alias(
    "hessian_free",
    IdentitySolve,
    """``Implicit(solve=identity(alpha), check_finite)``: the first-order implicit gradient with the inverse
    replaced by ``α I``, ``∇_φF + α (∂Φ/∂φ)ᵀ ∇_θF``.

    For ``Φ = θ − η∇_θℓ`` and ``α = 1/η`` this is ``∇_φF − ∂²ℓ/∂φ∂θ · ∇_θF``. Equals ``Neumann(0, α)``.
    Records: ``HessianFree``.

    References:
      Shen, Q., Wang, Y., Yang, Z., et al. (2024). Memory-Efficient Gradient Unrolling for Large-Scale Bi-level
      Optimization (the Hessian-free baseline and the first phase of the two-phase paradigm). NeurIPS 2024.
      https://arxiv.org/abs/2406.14095
    """,
)
