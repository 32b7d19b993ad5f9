"""The base class of every estimator's settings, and the small array protocol combinators are written over.

Each estimator is defined once, here in the core, as a frozen dataclass: its fields are its settings, its
``__post_init__`` validates them and its docstring states what it computes. The settings class is abstract (it
cannot be instantiated); a backend (``fg2u.jax``, ``fg2u.torch``) subclasses it with a final class that adds only
the numeric kernel:

* a *stateless* estimator's backend class implements ``__call__(problem, φ, key) -> (ĝ, Aux)``; ``init``
  returns ``None`` and ``estimate`` passes the state through;
* a *combinator* (an estimator built from other estimators: [`TwoPhase`][fg2u.estimators.TwoPhase],
  [`Scaled`][fg2u.estimators.Scaled], the control variates) is written once here over
  [`TreeOps`][fg2u.estimators.TreeOps], and the backend class only sets ``ops``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol, runtime_checkable

from fg2u.estimator import Aux
from fg2u.problem import BilevelProblem, BlackBoxObjective, BlackBoxProblem, UnrolledProblem

PyTree = Any

__all__ = ["Estimator", "TreeOps", "describe_settings", "check_not_problem"]


@runtime_checkable
class TreeOps(Protocol):
    """The array operations the core's combinators need, for one backend (like
    [`fg2u.directions.RandomOps`][fg2u.directions.RandomOps]).

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
    """Base of the settings classes of [`fg2u.estimators`][fg2u.estimators] (a mixin for frozen dataclasses).

    A registered settings class is *abstract*: instantiating it raises a ``TypeError`` that names the backend
    classes to use instead. Its backend subclasses (``fg2u.jax.FG2U``, ``fg2u.torch.FG2U``) are the runnable
    estimators; they are final (``typing.final``; subclassing one raises ``TypeError``) and implement
    ``__call__`` (stateless estimators) or set ``ops`` (combinators written over [`TreeOps`][fg2u.estimators.TreeOps]).

    Class attributes (set by [`fg2u.estimators.register`][fg2u.estimators.register], or by the settings class):
      name: the stable registry name (``"fg2u"``, ``"rgu"``, …) used by configs and CLIs.
      display: the name used in every result record (``"FG2U"``); the settings class's name.
      stateful: whether ``init`` returns a state that ``estimate`` updates across meta steps.
      ops: the backend's [`TreeOps`][fg2u.estimators.TreeOps] (combinators only; set by the backend class).
      example: settings shown by the error for a problem passed as a setting (``"num_directions=8"``).
    """

    name: ClassVar[str] = ""
    display: ClassVar[str] = ""
    stateful: ClassVar[bool] = False
    ops: ClassVar[Any] = None
    example: ClassVar[str] = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # the one place every estimator's construction passes through, before the dataclass __init__ and the
        # settings checks of __post_init__: abstract settings classes, and a problem passed as a setting
        if cls.__dict__.get("_abstract", False):
            raise TypeError(abstract_message(cls.__name__, cls.name or cls.__name__))
        check_not_problem(cls.__name__, cls.example, (*args, *kwargs.values()))
        return super().__new__(cls)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__mro__[1:]:
            if base.__dict__.get("__final__", False):
                raise TypeError(
                    f"{base.__module__}.{base.__qualname__} is final: compose estimators (Scaled, TwoPhase, …) or "
                    f"write a new kernel of fg2u.estimators.{base.__name__} instead of subclassing this one"
                )
        spec = next((b for b in cls.__mro__[1:] if b.__dict__.get("_abstract", False)), None)
        if spec is not None and cls.ops is None and not _defines(cls, spec, "__call__"):
            raise TypeError(
                f"{cls.__qualname__}, a kernel of fg2u.estimators.{spec.__name__}, must implement "
                "__call__(problem, phi, key) or set ops (a TreeOps)"
            )

    @property
    def display_name(self) -> str:
        """The estimator's name in result records."""
        return self.display or type(self).__name__

    @property
    def bias(self) -> str:
        """``"exact"`` (the meta-gradient itself), ``"unbiased"`` (equal to it in expectation: averaging
        estimates raises the cosine towards 1) or ``"biased"`` (averaging does not remove the error: the cosine
        has a ceiling below 1). The base class claims nothing: ``"biased"``."""
        return "biased"

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
        grad, aux, _ = self.estimate(problem, phi, key, self.init(phi))
        return grad, aux

    def settings(self) -> dict[str, Any]:
        """``{"estimator": display name, field: value, …}``, JSON-serialisable (for result records)."""
        out: dict[str, Any] = {"estimator": self.display_name}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            out[field.name] = describe_settings(getattr(self, field.name))
        return out


def abstract_message(name: str, registry_name: str) -> str:
    """The error for a settings class (or alias) of [`fg2u.estimators`][fg2u.estimators] called without a backend."""
    return (
        f"fg2u.estimators.{name} holds the settings only and cannot run; build the backend's estimator of the "
        f"same name, fg2u.jax.{name}(...) or fg2u.torch.{name}(...), or by name: "
        f"fg2u.jax.make({registry_name!r}, ...) / fg2u.torch.make({registry_name!r}, ...)"
    )


def _defines(cls: type, spec: type, attribute: str) -> bool:
    """Whether ``attribute`` is defined by ``cls`` or a class between it and the settings class ``spec``
    (inclusive) in its MRO."""
    for klass in cls.__mro__:
        if attribute in klass.__dict__:
            return True
        if klass is spec:
            return False
    return False


def check_not_problem(who: str, example: str, values: Iterable[Any]) -> None:
    """The settings validation of every estimator (`Estimator.__new__`, [`Alias`][fg2u.estimators.Alias]):
    a problem among the settings means the class was called like an estimator, ``FG2U(problem, phi, key)``."""
    if any(_is_problem(value) for value in values):
        raise TypeError(f"{who}(...) takes settings; build it, then call it: {who}({example})(problem, phi, key)")


def _is_problem(value: Any) -> bool:
    """A problem passed where a setting belongs (``FG2U(problem, phi, key)``: the class called like an instance)."""
    if isinstance(value, (UnrolledProblem, BlackBoxProblem)):
        return True
    return not isinstance(value, type) and isinstance(value, (BilevelProblem, BlackBoxObjective))
