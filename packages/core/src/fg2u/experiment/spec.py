"""The estimator spec grammar: one string names an estimator and its settings, for every CLI and config.

::

    spec     := NAME [":" settings]
    settings := item ("," item)*
    item     := KEY "=" value
    value    := NAME "(" [settings] ")"      a nested spec with settings:  second=fg2u(num_directions=8)
              | literal                      true / false / none, an int, a float, or a string
                                             (bare like ``rademacher``, or quoted: 'a,b')

A bare string given to a setting that holds an estimator (``first=hessian_free``) is a nested spec without
settings. Names are registry names ([`fg2u.estimators.names`][fg2u.estimators.names]) or a benchmark's own methods
(``random_real``, ``least_squares``); white space around tokens is ignored.

Examples:
    >>> from fg2u.experiment.spec import parse
    >>> spec = parse("fg2u:num_directions=32,chunk_size=8")
    >>> spec.name, dict(spec.settings)
    ('fg2u', {'num_directions': 32, 'chunk_size': 8})
    >>> str(parse("two_phase:first=hessian_free, second=fg2u(num_directions=8),switch_step=100"))
    'two_phase:first=hessian_free,second=fg2u(num_directions=8),switch_step=100'
    >>> parse("fg2u:num_directions=0x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fg2u.experiment.spec.SpecError: estimator spec 'fg2u:num_directions=0x': ...

[`build`][fg2u.experiment.spec.build] turns a spec into a backend estimator through the registry (``fg2u.jax.BACKEND``,
``fg2u.torch.BACKEND``); a benchmark's presets fill the settings a spec leaves out
([`Spec.with_defaults`][fg2u.experiment.spec.Spec.with_defaults]).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from fg2u.estimators import names

__all__ = ["Spec", "SpecError", "parse", "build", "completed", "to_mapping"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_WORDS = {"true": True, "false": False, "none": None, "null": None}


class SpecError(ValueError):
    """A malformed spec; the message quotes the spec, the position and what was expected."""


@dataclasses.dataclass(frozen=True)
class Spec:
    """An estimator (or benchmark method) name with settings; values are literals or nested
    [`Spec`][fg2u.experiment.spec.Spec].

    Attributes:
      name: the registry name as written (``"fg2u"``); `key` is its normalised form.
      settings: setting name → value (``int``, ``float``, ``bool``, ``None``, ``str`` or
        [`Spec`][fg2u.experiment.spec.Spec]), in the order written.
    """

    name: str
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise SpecError(f"a spec name must be an identifier like 'fg2u', got {self.name!r}")
        object.__setattr__(self, "settings", dict(self.settings))

    @property
    def key(self) -> str:
        """The normalised name (lower case, ``-`` → ``_``), as the registry compares names."""
        return self.name.strip().lower().replace("-", "_")

    def with_defaults(self, defaults: Mapping[str, Any]) -> Spec:
        """The spec with ``defaults`` for the settings it does not give (given settings win)."""
        return Spec(self.name, {**dict(defaults), **dict(self.settings)})

    def replace(self, **settings: Any) -> Spec:
        """The spec with ``settings`` set (overriding given ones)."""
        return Spec(self.name, {**dict(self.settings), **settings})

    def __str__(self) -> str:
        if not self.settings:
            return self.name
        return f"{self.name}:{_format_settings(self.settings)}"


def _format_value(value: Any) -> str:
    if isinstance(value, Spec):
        return f"{value.name}({_format_settings(value.settings)})" if value.settings else value.name
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _NAME.fullmatch(text) and text.lower() not in _WORDS:
        return text
    return "'" + text.replace("'", "\\'") + "'"


def _format_settings(settings: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={_format_value(v)}" for k, v in settings.items())


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, expected: str) -> SpecError:
        rest = self.text[self.pos :]
        found = repr(rest[:20]) if rest else "the end"
        return SpecError(
            f"estimator spec {self.text!r}: expected {expected} at position {self.pos}, found {found} "
            "(grammar: name[:key=value,...], nested: key=name(key=value,...); e.g. 'fg2u:num_directions=32')"
        )

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self, char: str) -> bool:
        self.skip()
        return self.text.startswith(char, self.pos)

    def expect(self, char: str) -> None:
        if not self.peek(char):
            raise self.fail(repr(char))
        self.pos += len(char)

    def name(self, expected: str = "a name") -> str:
        self.skip()
        match = _NAME.match(self.text, self.pos)
        if match is None:
            raise self.fail(expected)
        self.pos = match.end()
        return match.group()

    def settings(self, closing: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            key = self.name()
            if key in out:
                raise SpecError(f"estimator spec {self.text!r}: setting {key!r} is given twice")
            self.expect("=")
            out[key] = self.value()
            if self.peek(","):
                self.pos += 1
                continue
            if closing is None:
                self.skip()
                if self.pos != len(self.text):
                    raise self.fail("',' or the end")
            return out

    def value(self) -> Any:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("a value")
        char = self.text[self.pos]
        if char in "'\"":
            return self.quoted(char)
        start = self.pos
        number = _FLOAT.match(self.text, self.pos)
        if number is not None and (number.end() == len(self.text) or self.text[number.end()] in ",) \t"):
            token = number.group()
            if _INT.fullmatch(token):
                self.pos = number.end()
                return int(token)
            if not math.isfinite(float(token)):  # 1e400 overflows to inf
                raise self.fail("a finite number or a name")
            self.pos = number.end()
            return float(token)
        word = self.name("a value (a number, true/false/none, a name, name(...) or a quoted string)")
        if self.peek("("):
            self.pos += 1
            settings = {} if self.peek(")") else self.settings(")")
            self.expect(")")
            return Spec(word, settings)
        lowered = word.lower()
        if lowered in _WORDS:
            return _WORDS[lowered]
        if lowered in ("nan", "inf"):
            self.pos = start  # point at the value, not past it
            raise self.fail("a finite number or a name")
        return word

    def quoted(self, quote: str) -> str:
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if char == quote:
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1
        raise self.fail(f"a closing {quote}")


def parse(text: str | Spec) -> Spec:
    """Parses ``name[:key=value,...]`` (module docstring); a [`Spec`][fg2u.experiment.spec.Spec] is returned as is.

    Raises [`SpecError`][fg2u.experiment.spec.SpecError] (a ``ValueError``) naming the position and what was expected.
    """
    if isinstance(text, Spec):
        return text
    if not isinstance(text, str):
        raise TypeError(f"an estimator spec must be a string like 'fg2u:num_directions=8', got {text!r}")
    parser = _Parser(text)
    name = parser.name()
    settings: dict[str, Any] = {}
    if parser.peek(":"):
        parser.pos += 1
        settings = parser.settings(None)
    else:
        parser.skip()
        if parser.pos != len(text):
            raise parser.fail("':' or the end")
    return Spec(name, settings)


def to_mapping(spec: Spec) -> dict[str, Any]:
    """``{"name": ..., **settings}`` with nested specs as nested mappings — the form
    [`fg2u.estimators.Backend.make`][fg2u.estimators.Backend.make] takes for nested estimators."""
    return {"name": spec.name, **{k: to_mapping(v) if isinstance(v, Spec) else v for k, v in spec.settings.items()}}


def _nested(value: Any) -> Spec | None:
    """``value`` as a nested spec: a [`Spec`][fg2u.experiment.spec.Spec], or a string naming a registered estimator."""
    if isinstance(value, Spec):
        return value
    if isinstance(value, str) and _NAME.fullmatch(value):
        if value.strip().lower().replace("-", "_") in names():
            return Spec(value)
    return None


def _complete(spec: Spec, complete: Callable[[Spec], Spec] | None) -> Spec:
    """Completes nested specs first, then ``spec``; nested estimators the completion adds (presets such as
    ``second="fg2u"``) are completed in turn. A completion that returns another spec (a wrapper) is final."""
    settings = {}
    for key, value in spec.settings.items():
        nested = _nested(value)
        settings[key] = _complete(nested, complete) if nested is not None else value
    inner = Spec(spec.name, settings)
    if complete is None:
        return inner
    out = complete(inner)
    if out.key != inner.key:
        return out
    added = {}
    for key, value in out.settings.items():
        nested = _nested(value) if key not in inner.settings else None
        if nested is not None:
            added[key] = _complete(nested, complete)
    return out.replace(**added) if added else out


def build(spec: str | Spec, backend: Any, *, complete: Callable[[Spec], Spec] | None = None) -> Any:
    """The ``backend``'s estimator for ``spec`` (a string or [`Spec`][fg2u.experiment.spec.Spec]).

    Args:
      spec: e.g. ``"fg2u:num_directions=32"``.
      backend: an [`fg2u.estimators.Backend`][fg2u.estimators.Backend] (``fg2u.jax.BACKEND`` / ``fg2u.torch.BACKEND``).
      complete: a benchmark's presets, applied to every nested spec and then to the top-level one
        (innermost first): it returns the spec with the settings the user left out filled in (usually
        ``spec.with_defaults(PRESETS.get(spec.key, {}))``); it may wrap a spec in another (``scaled``).

    Setting values that are bare names are resolved by the registry: estimator-valued settings accept a name.
    Unknown names or settings raise errors that list the valid ones.
    """
    full = _complete(parse(spec), complete)
    return backend.make(full.name, **_settings_of(full))


def _settings_of(spec: Spec) -> dict[str, Any]:
    return {k: to_mapping(v) if isinstance(v, Spec) else v for k, v in spec.settings.items()}


def completed(spec: str | Spec, complete: Callable[[Spec], Spec] | None = None) -> Spec:
    """The spec after a benchmark's presets (``complete``), innermost first — what [`build`][fg2u.experiment.spec.build]
    builds."""
    return _complete(parse(spec), complete)
