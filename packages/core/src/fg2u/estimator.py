"""The meta-gradient estimator protocol shared by every backend.

An estimator maps ``(problem, φ, key) -> (ĝ, aux)`` where ``ĝ`` is a pytree shaped like ``φ`` that
estimates ``dL/dφ`` and ``aux`` is an :class:`Aux`. Estimators are frozen dataclasses holding only their
settings, so they are hashable, comparable and safe to close over inside ``jax.jit``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

from fg2u.problem import PyTree

__all__ = ["Aux", "MetaGradientEstimator"]


class Aux(NamedTuple):
    """Side outputs of one meta-gradient estimate.

    Attributes:
      outer_loss: scalar ``L(φ) = F(θ_T(φ), φ)`` at the given φ (for FG²U-ZO: the unperturbed value
        when the scheme evaluates it, otherwise the mean of the perturbed evaluations).
    """

    outer_loss: Any


@runtime_checkable
class MetaGradientEstimator(Protocol):
    """``estimator(problem, phi, key) -> (meta_gradient, Aux)``.

    ``key`` is the backend's randomness (a ``jax.random`` key, a ``torch.Generator``); deterministic
    estimators ignore it.
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any) -> tuple[PyTree, Aux]: ...
