"""Stable names for estimators, and construction by name for configs and command lines.

Every settings class of [`fg2u.estimators`][fg2u.estimators] registers itself under a stable snake-case name::

    @register("fg2u")
    @dataclasses.dataclass(frozen=True)
    class FG2U(Estimator): ...

A name may also be an [`Alias`][fg2u.estimators.Alias]: a registered name that builds another estimator with part of its
settings fixed (``neumann`` → ``Implicit(solve=neumann(num_terms, alpha))``). A backend exposes the same names through a
[`Backend`][fg2u.estimators.Backend] built from its classes and bound aliases, e.g. ``fg2u.jax.make("fg2u",
num_directions=8)``. Nested estimators (the arguments of combinators such as [`TwoPhase`][fg2u.estimators.TwoPhase]) may
be given as a name, as ``{"name": ..., **settings}``, or as an estimator object.
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fg2u.estimators.base import Estimator, abstract_message, check_not_problem

__all__ = ["register", "register_alias", "names", "get_spec", "normalise_name", "Alias", "Backend"]

_REGISTRY: dict[str, Any] = {}  # name → settings class or Alias


def normalise_name(name: str) -> str:
    """``"FG2U-ZO"``, ``"fg2u_zo"``, ``"FG2U_ZO"`` → ``"fg2u_zo"``; ``"HessianFree"`` → ``"hessianfree"``."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def register(name: str) -> Callable[[type], type]:
    """Class decorator: registers a settings class under ``name`` (and its class name as the display name).

    The class becomes abstract: only its backend subclasses can be instantiated (see
    [`Estimator`][fg2u.estimators.Estimator]).
    """

    def decorate(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Estimator)):
            raise TypeError(f"register({name!r}) decorates subclasses of fg2u.estimators.Estimator, got {cls!r}")
        key = normalise_name(name)
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"estimator name {name!r} is already registered for {_REGISTRY[key].__name__}")
        cls.name = key
        cls.display = cls.__name__
        cls._abstract = True  # type: ignore[attr-defined]  # settings only: see Estimator.__new__
        _REGISTRY[key] = cls
        return cls

    return decorate


class Alias:
    """A registered name that builds another estimator with part of its settings fixed, e.g. ``neumann`` →
    ``Implicit(solve=NeumannSolve(num_terms, alpha), check_finite)``.

    It reads like a settings class: ``name``, ``display`` (its record name), ``dataclasses.fields(alias)`` (its
    settings, with their defaults and types) and a call with those settings (positional or keyword) that returns
    the ``target`` estimator. The alias registered in [`fg2u.estimators`][fg2u.estimators] targets the abstract settings
    class; a backend binds it to its kernel (`bind`), e.g. ``fg2u.jax.Neumann``.

    Args:
      name: the registry name (``"neumann"``).
      display: the record name of the estimators it builds (``"Neumann"``).
      target: the estimator class it builds.
      fields: its settings, as dataclass fields.
      build: ``build(**settings) -> target settings``.
      doc: its docstring.
      module: the module it is defined in.
    """

    def __init__(
        self,
        name: str,
        display: str,
        target: type,
        fields: Iterable[dataclasses.Field],
        build: Callable[..., dict[str, Any]],
        doc: str,
        module: str,
    ) -> None:
        self.name = normalise_name(name)
        self.display = self.__name__ = self.__qualname__ = display
        self.target, self.build, self.__doc__, self.__module__ = target, build, inspect.cleandoc(doc), module
        fields = tuple(fields)
        # dataclasses.fields(alias) lists its settings, as for a settings class (configs introspect them)
        self.__dataclass_fields__ = {f.name: f for f in fields}
        self.__signature__ = inspect.Signature(
            [
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default,
                    annotation=f.type,
                )
                for f in fields
            ]
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.target.__dict__.get("_abstract", False):
            raise TypeError(abstract_message(self.display, self.name))
        check_not_problem(self.display, getattr(self.target, "example", ""), (*args, *kwargs.values()))
        try:
            bound = self.__signature__.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{self.display}: {err}; its settings are {', '.join(self.__dataclass_fields__)}") from None
        bound.apply_defaults()
        return self.target(**self.build(**bound.arguments))

    def bind(self, target: type, module: str, examples: str = "") -> Alias:
        """This alias building ``target`` (a backend's kernel of the target settings class), documented with
        backend-specific ``examples`` (doctest lines, appended under ``Examples:``)."""
        if not (isinstance(target, type) and issubclass(target, self.target)):
            raise TypeError(f"alias {self.name!r} builds {self.target.__name__}; got {target!r}")
        doc = self.__doc__ or ""
        if examples:
            doc = doc + "\n\nExamples:\n" + textwrap.indent(inspect.cleandoc(examples), "  ")
        return Alias(self.name, self.display, target, self.__dataclass_fields__.values(), self.build, doc, module)

    def __repr__(self) -> str:
        return f"<estimator alias {self.name!r}: {self.target.__module__}.{self.target.__qualname__}>"


def register_alias(alias: Alias) -> Alias:
    """Registers ``alias`` under its name (its target must be a registered settings class); returns it."""
    if alias.target not in _REGISTRY.values():
        raise ValueError(f"alias {alias.name!r} targets {alias.target.__name__}, which is not registered")
    if alias.name in _REGISTRY and _REGISTRY[alias.name] is not alias:
        raise ValueError(f"estimator name {alias.name!r} is already registered")
    _REGISTRY[alias.name] = alias
    return alias


def names() -> tuple[str, ...]:
    """The registered estimator names, in registration order."""
    return tuple(_REGISTRY)


def get_spec(name: str) -> Any:
    """The settings class (or [`Alias`][fg2u.estimators.Alias]) registered as ``name`` (a registry name or a display
    name, any case)."""
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
      aliases: the backend's bound aliases ([`Alias.bind`][fg2u.estimators.Alias.bind]); an alias without one is bound
        here.
    """

    def __init__(self, label: str, classes: Iterable[type], aliases: Iterable[Alias] = ()) -> None:
        self.label = label
        self._by_spec: dict[Any, Any] = {}
        specs = [s for s in _REGISTRY.values() if isinstance(s, type)]
        for cls in classes:
            spec = next((s for s in specs if issubclass(cls, s)), None)
            if spec is None:
                raise TypeError(f"{cls.__name__} subclasses no registered fg2u.estimators settings class")
            self._by_spec[spec] = cls
        bound = {alias.name: alias for alias in aliases}
        for alias in [s for s in _REGISTRY.values() if isinstance(s, Alias)]:
            target = self._by_spec.get(alias.target)
            if target is None:
                continue
            mine = bound.get(alias.name)
            if mine is not None and mine.target is not target:
                raise TypeError(
                    f"{self.label} alias {alias.name!r} builds {mine.target!r}, not the backend's {target!r}"
                )
            self._by_spec[alias] = mine if mine is not None else alias.bind(target, target.__module__)

    @classmethod
    def collect(cls, label: str, namespace: Mapping[str, Any]) -> Backend:
        """The backend of every estimator class and bound alias found in ``namespace`` (a backend module's
        ``globals()``)."""
        specs = tuple(s for s in _REGISTRY.values() if isinstance(s, type))
        found = [
            obj for obj in namespace.values() if isinstance(obj, type) and issubclass(obj, specs) and obj not in specs
        ]
        aliases = [obj for obj in namespace.values() if isinstance(obj, Alias) and obj not in _REGISTRY.values()]
        return cls(label, found, aliases)

    def names(self) -> tuple[str, ...]:
        """The registry names this backend implements."""
        return tuple(name for name, spec in _REGISTRY.items() if spec in self._by_spec)

    def get(self, name: str) -> Any:
        """The backend class (or bound [`Alias`][fg2u.estimators.Alias]) for ``name``."""
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
        if isinstance(cls, Alias):
            return cls(**settings)
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
