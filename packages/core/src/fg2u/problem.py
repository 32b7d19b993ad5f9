"""Bi-level problems, described independently of any array library.

An *unrolled* problem is the meta objective

    L(φ) = F(θ_T(φ), φ, outer_batch),   θ_0 = init(φ),   θ_{t+1} = Φ(θ_t, φ, batch_t),

where θ (the inner state: model parameters plus optimiser state) and φ (the meta parameters) are
arbitrary pytrees, and ``batch_t`` is the t-th slice (along the leading axis) of ``inner_batches``.

A *black-box* problem only exposes φ ↦ L(φ) (an external solver, a simulator); it can be
differentiated only by finite differences (FG²U-ZO).

Both are frozen dataclasses whose callables are treated as static configuration and whose data fields
(``inner_batches``, ``outer_batch``, ``data``) are traced data: the JAX backend registers them as
pytrees, so a new mini-batch does not trigger recompilation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from typing import Any, Protocol, runtime_checkable

from fg2u.checks import check_callable, check_positive_int

PyTree = Any
Scalar = Any

__all__ = [
    "BilevelProblem",
    "BlackBoxObjective",
    "UnrolledProblem",
    "BlackBoxProblem",
    "check_unrolled_structure",
    "promoted_by_phi_message",
    "PyTree",
    "Scalar",
]


@runtime_checkable
class BilevelProblem(Protocol):
    """What every unrolling estimator needs to know about a problem.

    Attributes:
      init: ``φ -> θ_0``.
      step: ``(θ_t, φ, batch_t) -> θ_{t+1}`` (``batch_t`` is ``None`` when there are no inner batches).
      outer_loss: ``(θ_T, φ, outer_batch) -> scalar``.
      num_steps: unroll depth ``T >= 1``.
      inner_batches: pytree whose leaves have leading axis ``T``, or ``None``.
      outer_batch: any pytree, or ``None``.
    """

    init: Callable[[PyTree], PyTree]
    step: Callable[[PyTree, PyTree, Any], PyTree]
    outer_loss: Callable[[PyTree, PyTree, Any], Scalar]
    num_steps: int
    inner_batches: Any
    outer_batch: Any


@runtime_checkable
class BlackBoxObjective(Protocol):
    """A meta objective φ ↦ L(φ) that can only be evaluated: ``objective(φ, data) -> scalar``."""

    objective: Callable[[PyTree, Any], Scalar]
    data: Any


@dataclasses.dataclass(frozen=True)
class UnrolledProblem:
    """The standard [`BilevelProblem`][fg2u.problem.BilevelProblem]: ``L(φ) = F(θ_T(φ), φ)`` with ``θ_{t+1} = Φ(θ_t, φ,
    batch_t)``.

    Example (a quadratic inner problem, linear dynamics)::

        problem = UnrolledProblem(
            init=lambda phi: jnp.zeros(3),
            step=lambda theta, phi, _: theta - 0.1 * (A @ theta - B @ phi),
            outer_loss=lambda theta, phi, _: 0.5 * jnp.sum((theta - target) ** 2),
            num_steps=100,
        )
    """

    init: Callable[[PyTree], PyTree]
    step: Callable[[PyTree, PyTree, Any], PyTree]
    outer_loss: Callable[[PyTree, PyTree, Any], Scalar]
    num_steps: int
    inner_batches: Any = None
    outer_batch: Any = None

    def __post_init__(self) -> None:
        check_callable("init", self.init)
        check_callable("step", self.step)
        check_callable("outer_loss", self.outer_loss)
        check_positive_int("num_steps (the unroll depth T)", self.num_steps)

    def replace(self, **changes: Any) -> UnrolledProblem:
        """A copy with some fields changed, e.g. new batches for the next meta step."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class BlackBoxProblem:
    """The standard [`BlackBoxObjective`][fg2u.problem.BlackBoxObjective]: ``L(φ) = objective(φ, data)``.

    ``objective`` typically runs an external or non-differentiable solver and evaluates the outer loss
    on its output. Only FG²U-ZO (finite differences) can estimate its meta-gradient.
    """

    objective: Callable[[PyTree, Any], Scalar]
    data: Any = None

    def __post_init__(self) -> None:
        check_callable("objective", self.objective)

    def replace(self, **changes: Any) -> BlackBoxProblem:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def check_unrolled_structure(problem: Any, who: str) -> int:
    """Checks that ``problem`` is an unrolled problem usable by estimator ``who``; returns ``T``.

    Backend-agnostic part of the validation (each backend adds its check of the inner-batch shapes).
    """
    if isinstance(problem, BlackBoxProblem):
        raise TypeError(
            f"{who} differentiates through the inner loop and needs an UnrolledProblem(init, step, outer_loss, "
            "num_steps); a BlackBoxProblem only exposes L(φ) — use FG2U_ZO for it"
        )
    for attr in ("init", "step", "outer_loss", "num_steps"):
        if not hasattr(problem, attr):
            raise TypeError(f"{who} needs an UnrolledProblem; {type(problem).__name__} has no attribute {attr!r}")
    return check_positive_int("num_steps (the unroll depth T)", problem.num_steps)


def promoted_by_phi_message(where: str, got: str, expected: str, phi_dtypes: Collection[str], cast: str) -> str | None:
    """The message for a step whose output ``where`` has dtype ``got`` but whose input had ``expected``, when
    φ is the cause: φ has dtype ``got``, the state does not, and the step mixes them (type promotion widens
    the new state to φ's dtype). ``None`` when φ is not the cause.

    ``cast`` is the backend's spelling of the fix, with ``{dtype}`` for the state's dtype (e.g.
    ``"phi.to({dtype})"``).
    """
    if got not in phi_dtypes or expected in phi_dtypes:
        return None
    return (
        f"phi has dtype {got} but the inner state is {expected}: step mixes them and type promotion makes "
        f"the new state {got} ({where} has dtype {got}, the state passed to step {expected}); pass φ in the "
        f"state's dtype ({cast.format(dtype=expected)}) or build the initial state in φ's dtype"
    )
