"""The meta-gradient estimator protocol shared by every backend.

An estimator is an optax-like pair of pure functions over an explicit state:

    state = estimator.init(φ)                                        # once, before the meta loop
    ĝ, aux, state = estimator.estimate(problem, φ, key, state)       # once per meta step

where ``ĝ`` is a pytree shaped like ``φ`` that estimates ``dL/dφ`` and ``aux`` is an [`Aux`][fg2u.estimator.Aux]. Most
estimators carry no state (``init`` returns ``None`` and ``estimate`` passes it through); an estimator with
state across meta steps (a two-phase schedule's step counter, a running control variate) keeps it there, never
in hidden attributes. For one-off use every estimator is also callable without state:

    ĝ, aux = estimator(problem, φ, key)      # == estimate(problem, φ, key, init(φ))[:2]

Estimators are frozen dataclasses holding only their settings, so they are hashable, comparable and safe to
close over inside ``jax.jit``. Their settings classes live in [`fg2u.estimators`][fg2u.estimators]; the backends
``fg2u.jax`` and ``fg2u.torch`` add the numeric kernels.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

from fg2u.problem import PyTree

__all__ = ["Aux", "MetaGradientEstimator"]


class Aux(NamedTuple):
    """Side outputs of one meta-gradient estimate.

    Attributes:
      outer_loss: scalar ``L(φ) = F(θ_T(φ), φ)`` at the given φ (for FG²U-ZO: the unperturbed value
        when the scheme evaluates it, otherwise the mean of the perturbed evaluations; for the implicit
        estimators ``F(θ_T, φ)``).
    """

    outer_loss: Any


@runtime_checkable
class MetaGradientEstimator(Protocol):
    """``init(φ) -> state``; ``estimate(problem, φ, key, state) -> (ĝ, Aux, state)``; ``__call__`` without state.

    ``key`` is the backend's randomness (a ``jax.random`` key, a ``torch.Generator`` or int seed);
    deterministic estimators ignore it (pass ``None``).
    """

    def init(self, phi: PyTree) -> Any: ...

    def estimate(self, problem: Any, phi: PyTree, key: Any, state: Any) -> tuple[PyTree, Aux, Any]: ...

    def __call__(self, problem: Any, phi: PyTree, key: Any) -> tuple[PyTree, Aux]: ...
