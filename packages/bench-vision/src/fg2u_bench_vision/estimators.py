"""Estimators of the benchmark, built by name from the core's registry with a :class:`Config`'s settings.

Any registered estimator (``fg2u.estimators.names()``) runs; nothing here is specific to one of them:

* settings named like a config field are taken from the config — ``num_directions`` (b) and ``chunk_size``
  (FG2U and the estimators wrapping it), ``truncation`` (TRGU), ``num_terms`` ← ``neumann_terms`` (Neumann),
  ``num_iterations`` ← ``neumann_terms`` (ConjugateGradient), ``switch_step`` ← ``two_phase_fraction`` ·
  ``meta_steps`` (TwoPhase);
* nested estimators default to the paper's choices: TwoPhase ``first`` = Hessian-free, ``second`` = FG2U;
  ControlVariate ``surrogate`` = Hessian-free; every wrapped ``estimator`` = FG2U;
* implicit estimators (Neumann, ConjugateGradient, HessianFree) linearise the inner step at θ_T, where the
  cosine schedule's lr is η_{T−1} ≪ η; they are wrapped in ``Scaled(·, 1/η_{T−1})`` so that every estimator
  reports meta-gradients in the same units (see condensation.py).

| name | estimator |
|---|---|
| ``rgu`` | ``RGU()`` — exact reverse-mode meta-gradient (reference) |
| ``fg2u`` | ``FG2U(num_directions=b, chunk_size)`` |
| ``trgu`` | ``TRGU(truncation=K)`` |
| ``hessian_free`` | ``Scaled(HessianFree(), 1/η_{T−1})`` |
| ``neumann`` | ``Scaled(Neumann(num_terms=K), 1/η_{T−1})`` |
| ``two_phase`` | ``TwoPhase(Scaled(HessianFree), FG2U, switch_step=⌊fraction · meta_steps⌋)`` |
| ``control_variate`` | ``ControlVariate(FG2U, Scaled(HessianFree), scale=None)`` |
| ``running_control_variate`` | ``RunningControlVariate(FG2U)`` |
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .configs import Config

__all__ = ["ESTIMATOR_NAMES", "DEFAULT_ESTIMATORS", "build_estimator", "estimator_names"]

DEFAULT_ESTIMATORS = ("rgu", "fg2u", "trgu", "hessian_free", "neumann", "two_phase")
_IMPLICIT = ("Neumann", "ConjugateGradient", "HessianFree")


def estimator_names() -> tuple[str, ...]:
    """Every registered estimator name (the choices of ``--estimators``)."""
    import fg2u.estimators  # noqa: PLC0415

    return fg2u.estimators.names()


ESTIMATOR_NAMES = estimator_names()

_DEFAULT_NESTED = {"first": "hessian_free", "second": "fg2u", "surrogate": "hessian_free", "estimator": "fg2u"}


def _config_settings(config: Config) -> dict[str, Any]:
    return {
        "num_directions": config.num_directions,
        "chunk_size": config.chunk_size,
        "truncation": config.truncation,
        "num_terms": config.neumann_terms,
        "num_iterations": max(1, config.neumann_terms),
        "switch_step": int(config.two_phase_fraction * config.meta_steps),
    }


def build_estimator(name: str, config: Config, implicit_scale: float = 1.0, **overrides: Any) -> Any:
    """The ``fg2u.jax`` estimator ``name`` with ``config``'s settings (see the module docstring).

    ``overrides`` replace single settings (e.g. ``num_directions=32``).
    """
    import fg2u.jax as fj  # noqa: PLC0415

    cls = fj.BACKEND.get(name)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    settings: dict[str, Any] = {}
    provided = {**_config_settings(config), **overrides}
    for field_name, field in fields.items():
        if field.metadata.get("estimator"):
            settings[field_name] = build_estimator(
                overrides.get(field_name, _DEFAULT_NESTED[field_name]), config, implicit_scale
            )
        elif field_name in provided:
            settings[field_name] = provided[field_name]
    estimator = cls(**settings)
    if cls.display in _IMPLICIT:
        return fj.Scaled(estimator, scale=float(implicit_scale))
    return estimator
