"""Stable names for estimators, and construction by name for configs and command lines.

Every settings class of :mod:`fg2u.estimators` registers itself under a stable snake-case name::

    @register("fg2u")
    @dataclasses.dataclass(frozen=True)
    class FG2U(Estimator): ...

A backend exposes the same names through a :class:`Backend` built from its classes, e.g.
``fg2u.jax.make("fg2u", num_directions=8)``. Nested estimators (the arguments of combinators such as
:class:`~fg2u.estimators.TwoPhase`) may be given as a name, as ``{"name": ..., **settings}``, or as an
estimator object.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fg2u.estimators.base import Estimator

__all__ = ["register", "names", "get_spec", "normalise_name", "Backend"]

_REGISTRY: dict[str, type] = {}


def normalise_name(name: str) -> str:
    """``"FG2U-ZO"``, ``"fg2u_zo"``, ``"FG2U_ZO"`` → ``"fg2u_zo"``; ``"HessianFree"`` → ``"hessianfree"``."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def register(name: str) -> Callable[[type], type]:
    """Class decorator: registers a settings class under ``name`` (and its class name as the display name)."""

    def decorate(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Estimator)):
            raise TypeError(f"register({name!r}) decorates subclasses of fg2u.estimators.Estimator, got {cls!r}")
        key = normalise_name(name)
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"estimator name {name!r} is already registered for {_REGISTRY[key].__name__}")
        cls.name = key
        cls.display = cls.__name__
        _REGISTRY[key] = cls
        return cls

    return decorate


def names() -> tuple[str, ...]:
    """The registered estimator names, in registration order."""
    return tuple(_REGISTRY)


def get_spec(name: str) -> type:
    """The settings class registered as ``name`` (a registry name or a display name, any case)."""
    if not isinstance(name, str):
        raise TypeError(f"an estimator name must be a string, got {type(name).__name__}: {name!r}")
    key = normalise_name(name)
    if key in _REGISTRY:
        return _REGISTRY[key]
    for cls in _REGISTRY.values():
        if normalise_name(getattr(cls, "display", cls.__name__)) == key:
            return cls
    raise ValueError(f"unknown estimator {name!r}; choose one of {', '.join(names())}")


class Backend:
    """The estimators of one backend, looked up by name.

    Args:
      label: ``"jax"`` or ``"torch"`` (used in error messages).
      classes: the backend's estimator classes; each must subclass exactly one registered settings class.
    """

    def __init__(self, label: str, classes: Iterable[type]) -> None:
        self.label = label
        self._by_spec: dict[type, type] = {}
        for cls in classes:
            spec = next((s for s in _REGISTRY.values() if issubclass(cls, s)), None)
            if spec is None:
                raise TypeError(f"{cls.__name__} subclasses no registered fg2u.estimators settings class")
            self._by_spec[spec] = cls

    @classmethod
    def collect(cls, label: str, namespace: Mapping[str, Any]) -> Backend:
        """The backend of every estimator class found in ``namespace`` (a backend module's ``globals()``)."""
        specs = tuple(_REGISTRY.values())
        found = [
            obj for obj in namespace.values() if isinstance(obj, type) and issubclass(obj, specs) and obj not in specs
        ]
        return cls(label, found)

    def names(self) -> tuple[str, ...]:
        """The registry names this backend implements."""
        return tuple(name for name, spec in _REGISTRY.items() if spec in self._by_spec)

    def get(self, name: str) -> type:
        """The backend class for ``name``."""
        spec = get_spec(name)
        try:
            return self._by_spec[spec]
        except KeyError:
            raise ValueError(
                f"estimator {name!r} ({spec.__name__}) has no {self.label} kernel; available: {', '.join(self.names())}"
            ) from None

    def make(self, name: str, **settings: Any) -> Any:
        """``make("fg2u", num_directions=8)`` → the backend's ``FG2U(num_directions=8)``.

        Settings that are themselves estimators (e.g. TwoPhase's ``first``) may be a name, a mapping
        ``{"name": ..., **settings}`` or an estimator object. Unknown settings raise a ``TypeError`` that lists
        the valid ones.
        """
        cls = self.get(name)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - set(fields))
        if unknown:
            raise TypeError(
                f"{cls.__name__} has no setting(s) {', '.join(unknown)}; its settings are {', '.join(fields)}"
            )
        built = {
            key: self._nested(value) if _is_estimator_field(fields[key]) else value for key, value in settings.items()
        }
        return cls(**built)

    def _nested(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.make(value)
        if isinstance(value, Mapping):
            options = dict(value)
            if "name" not in options:
                raise ValueError(f"a nested estimator given as a mapping needs a 'name' key, got {value!r}")
            return self.make(options.pop("name"), **options)
        return value


def _is_estimator_field(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("estimator", False))


def estimator_field(**kwargs: Any) -> Any:
    """A dataclass field holding a nested estimator (``Backend.make`` builds it from a name or mapping)."""
    metadata = dict(kwargs.pop("metadata", {}) or {})
    metadata["estimator"] = True
    return dataclasses.field(metadata=metadata, **kwargs)
