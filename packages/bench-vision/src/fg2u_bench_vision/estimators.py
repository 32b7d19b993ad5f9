"""Estimator names of the benchmark → ``fg2u.jax`` estimators built with a :class:`Config`'s settings.

| name | estimator |
|---|---|
| ``rgu`` | ``RGU()`` — exact reverse-mode meta-gradient (reference) |
| ``fg2u`` | ``FG2U(num_directions=b, distribution="rademacher", chunk_size)`` |
| ``trgu`` | ``TRGU(truncation=K)`` — reverse mode through the last K inner steps |
| ``hessian_free`` | ``HessianFree(alpha=1)`` — estimate rescaled by 1/η_{T−1} (see condensation.py) |
| ``neumann`` | ``Neumann(num_terms=K, alpha=1)`` — same rescaling |
| ``two_phase`` | ``TwoPhase(HessianFree, FG2U, switch_step=⌊fraction · meta_steps⌋)`` |
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .configs import Config

__all__ = ["ESTIMATOR_NAMES", "EstimatorSpec", "build_estimator"]

ESTIMATOR_NAMES = ("rgu", "fg2u", "trgu", "hessian_free", "neumann", "two_phase")
_DISPLAY = {"rgu": "RGU", "fg2u": "FG2U", "trgu": "TRGU", "hessian_free": "HessianFree", "neumann": "Neumann",
            "two_phase": "TwoPhase"}


@dataclasses.dataclass(frozen=True)
class EstimatorSpec:
    """A built estimator and how the meta loop must call it.

    Attributes:
      name: benchmark name (``"fg2u"``).
      display: record name (``"FG2U"``).
      estimator: the ``fg2u.jax`` estimator object.
      implicit_scaled: multiply the estimate by 1/η_{T−1} (Neumann, HessianFree; for TwoPhase only its
        first phase is implicit, so the rescaling is applied through a phase-aware wrapper instead).
      pass_meta_step: the estimator takes ``meta_step=`` (TwoPhase).
      settings: JSON-serialisable estimator settings for the record.
    """

    name: str
    display: str
    estimator: Any
    implicit_scaled: bool
    pass_meta_step: bool
    settings: dict[str, Any]


def build_estimator(name: str, config: Config, implicit_scale: float = 1.0) -> EstimatorSpec:
    """Builds the estimator called ``name`` (one of :data:`ESTIMATOR_NAMES`) from ``config``.

    ``implicit_scale`` (1/η_{T−1}) is folded into TwoPhase's first (Hessian-free) phase; for plain
    Neumann/HessianFree the meta loop applies it (``implicit_scaled=True``).
    """
    import fg2u.jax as fj  # noqa: PLC0415

    if name not in ESTIMATOR_NAMES:
        raise ValueError(f"unknown estimator {name!r}; choose from {ESTIMATOR_NAMES}")
    fg2u_est = fj.FG2U(num_directions=config.num_directions, distribution="rademacher", chunk_size=config.chunk_size)
    if name == "rgu":
        return EstimatorSpec(name, _DISPLAY[name], fj.RGU(), False, False, {})
    if name == "fg2u":
        return EstimatorSpec(name, _DISPLAY[name], fg2u_est, False, False,
                             {"num_directions": config.num_directions, "distribution": "rademacher",
                              "chunk_size": config.chunk_size})
    if name == "trgu":
        return EstimatorSpec(name, _DISPLAY[name], fj.TRGU(truncation=config.truncation), False, False,
                             {"truncation": config.truncation})
    if name == "hessian_free":
        return EstimatorSpec(name, _DISPLAY[name], fj.HessianFree(alpha=1.0), True, False,
                             {"alpha": 1.0, "rescale": implicit_scale})
    if name == "neumann":
        return EstimatorSpec(name, _DISPLAY[name], fj.Neumann(num_terms=config.neumann_terms, alpha=1.0), True, False,
                             {"num_terms": config.neumann_terms, "alpha": 1.0, "rescale": implicit_scale})
    switch = int(config.two_phase_fraction * config.meta_steps)
    first = _Scaled(fj.HessianFree(alpha=1.0), implicit_scale)
    return EstimatorSpec(name, _DISPLAY[name], fj.TwoPhase(first=first, second=fg2u_est, switch_step=switch), False, True,
                         {"first": "HessianFree", "second": "FG2U", "switch_step": switch,
                          "num_directions": config.num_directions, "rescale_first": implicit_scale})


@dataclasses.dataclass(frozen=True)
class _Scaled:
    """``estimator`` with its meta-gradient multiplied by ``scale`` (used for TwoPhase's implicit phase)."""

    estimator: Any
    scale: float

    def __call__(self, problem: Any, phi: Any, key: Any = None) -> tuple[Any, Any]:
        import jax  # noqa: PLC0415

        grad, aux = self.estimator(problem, phi, key)
        return jax.tree_util.tree_map(lambda g: g * self.scale, grad), aux
