"""The base class of every estimator's settings, and the small array protocol combinators are written over.

Each estimator is defined once, here in the core, as a frozen dataclass: its fields are its settings, its
``__post_init__`` validates them and its docstring states what it computes. A backend (``fg2u.jax``,
``fg2u.torch``) subclasses it and adds only the numeric kernel:

* a *stateless* estimator's backend class implements ``__call__(problem, φ, key) -> (ĝ, Aux)``; ``init``
  returns ``None`` and ``estimate`` passes the state through;
* a *combinator* (an estimator built from other estimators: :class:`~fg2u.estimators.TwoPhase`,
  :class:`~fg2u.estimators.Scaled`, the control variates) is written once here over :class:`TreeOps`, and the
  backend class only sets ``ops``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

from fg2u.estimator import Aux

PyTree = Any

__all__ = ["Estimator", "TreeOps", "describe_settings"]


@runtime_checkable
class TreeOps(Protocol):
    """The array operations the core's combinators need, for one backend (like :class:`fg2u.directions.RandomOps`).

    Pytrees are the backend's (nested dicts/lists/tuples of arrays or tensors).
    """

    def counter(self, value: int) -> Any:
        """An integer scalar usable as estimator state (a traced ``int32`` in JAX, a Python int in torch)."""

    def cond(self, pred: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any]) -> Any:
        """``true_fn()`` if ``pred`` else ``false_fn()``; ``pred`` may be traced (both branches then run or compile)."""

    def scale(self, tree: PyTree, factor: Any) -> PyTree:
        """``factor · tree`` leaf by leaf (dtypes kept)."""

    def add(self, a: PyTree, b: PyTree) -> PyTree:
        """``a + b`` leaf by leaf."""

    def sub(self, a: PyTree, b: PyTree) -> PyTree:
        """``a − b`` leaf by leaf."""

    def vdot(self, a: PyTree, b: PyTree) -> Any:
        """``Σ_leaves ⟨a, b⟩`` as a scalar."""

    def zeros_like(self, tree: PyTree) -> PyTree:
        """Zeros shaped like ``tree``."""

    def split_key(self, key: Any, num: int) -> list:
        """``num`` independent keys from ``key``."""

    def sample_directions(self, distribution: Any, key: Any, num_directions: int, like: PyTree) -> PyTree:
        """``num_directions`` directions with ``E[v vᵀ] = I``, a pytree like ``like`` with a leading axis b."""

    def project(self, directions: PyTree, tree: PyTree) -> PyTree:
        """``(1/b) Σ_i ⟨v_i, tree⟩ v_i`` for directions with a leading axis b (``tree`` shaped like one direction)."""

    def take(self, directions: PyTree, start: int, stop: int) -> PyTree:
        """Directions ``start:stop`` along the leading axis."""

    def where(self, pred: Any, a: Any, b: Any) -> Any:
        """Scalar select ``a if pred else b`` (``pred`` may be traced)."""

    def size(self, tree: PyTree) -> int:
        """The total number of entries of ``tree`` (a Python int)."""


def describe_settings(value: Any) -> Any:
    """A JSON-serialisable description of a setting (nested estimators become their own ``settings()``)."""
    if isinstance(value, Estimator):
        return value.settings()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [describe_settings(v) for v in value]
    name = getattr(value, "name", None)
    if isinstance(name, str):  # a direction distribution object
        return name
    return repr(value)


class Estimator:
    """Base of the settings classes of :mod:`fg2u.estimators` (a mixin for frozen dataclasses).

    Class attributes (set by :func:`fg2u.estimators.register`):
      name: the stable registry name (``"fg2u"``, ``"rgu"``, …) used by configs and CLIs.
      display: the name used in every result record (``"FG2U"``); the settings class's name.
      stateful: whether ``init`` returns a state that ``estimate`` updates across meta steps.
      ops: the backend's :class:`TreeOps` (combinators only; set by the backend class).
    """

    name: ClassVar[str] = ""
    display: ClassVar[str] = ""
    stateful: ClassVar[bool] = False
    ops: ClassVar[Any] = None

    @property
    def display_name(self) -> str:
        """The estimator's name in result records."""
        return self.display or type(self).__name__

    def init(self, phi: PyTree) -> Any:
        """The state before the first meta step (``None`` for stateless estimators)."""
        del phi
        return None

    def estimate(self, problem: Any, phi: PyTree, key: Any, state: Any) -> tuple[PyTree, Aux, Any]:
        """``(ĝ, Aux, new_state)``: one estimate, and the state for the next meta step."""
        grad, aux = self(problem, phi, key)
        return grad, aux, state

    def __call__(self, problem: Any, phi: PyTree, key: Any) -> tuple[PyTree, Aux]:
        """``(ĝ, Aux)`` — one estimate from a fresh state (``estimate(problem, φ, key, init(φ))[:2]``)."""
        self._require_ops()  # stateless backend classes override __call__; combinators get here
        grad, aux, _ = self.estimate(problem, phi, key, self.init(phi))
        return grad, aux

    def settings(self) -> dict[str, Any]:
        """``{"estimator": display name, field: value, …}``, JSON-serialisable (for result records)."""
        out: dict[str, Any] = {"estimator": self.display_name}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            out[field.name] = describe_settings(getattr(self, field.name))
        return out

    def _require_ops(self) -> Any:
        if self.ops is None:
            raise NotImplementedError(self._settings_only_message())
        return self.ops

    def _settings_only_message(self) -> str:
        cls = type(self).__name__
        return (
            f"fg2u.estimators.{cls} holds the settings only; use the backend's class with the same name "
            f"(fg2u.jax.{cls} or fg2u.torch.{cls}) or build it by name: fg2u.jax.make({self.name!r}, ...)"
        )
