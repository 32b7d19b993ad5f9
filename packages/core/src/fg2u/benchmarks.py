"""Benchmarks as plugins: what a benchmark declares so that the leaderboard and the regression check find it.

A benchmark package registers one [`Benchmark`][fg2u.benchmarks.Benchmark] under the entry-point group
``fg2u.benchmarks``
(`ENTRY_POINT_GROUP`) in its ``pyproject.toml``::

    [project.entry-points."fg2u.benchmarks"]
    mybench = "fg2u_bench_mybench.plugin:BENCHMARK"

and [`discover`][fg2u.benchmarks.discover] loads every registered declaration. The core holds no benchmark name: the
leaderboard (`fg2u.leaderboard`) takes the order, headline metrics, table layout and published
reference numbers from the declarations, and the regression check runs each declared smoke command.

A declaration says

* ``name`` — the ``benchmark`` field of its result records (``results/<name>/*.jsonl``);
* ``smoke_command`` — the argv of a fast run (seconds to minutes), with the placeholders ``{python}``
  (the running interpreter), ``{out}`` (the folder to write records into), ``{repo_root}`` (the source
  checkout) and ``{seeds}`` (an argument of its own, expanded to one argument per seed);
* ``metrics`` — the headline metrics ([`Metric`][fg2u.benchmarks.Metric]: record metric name, which way is better, unit,
  label, and the tasks and columns of its table);
* ``columns`` — the record fields (``task``, ``dataset``, ``config``) or settings that identify a data
  set / problem size: the columns of the headline tables (e.g. data set and images per class, or the
  unroll depth T for memory);
* ``references`` — published numbers ([`Reference`][fg2u.benchmarks.Reference]) shown beside ours.

The leaderboard shows, per benchmark and per value of ``tables`` (default: task and config), one compact
table per headline metric: estimators as rows, the ``columns`` values as columns, mean ± std and n in
the cells and the published number beside ours where a reference matches.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

__all__ = [
    "ENTRY_POINT_GROUP",
    "UNITS",
    "KINDS",
    "Metric",
    "Reference",
    "Benchmark",
    "DiscoveryIssue",
    "discover",
    "estimator_token",
]

#: The entry-point group benchmarks register in.
ENTRY_POINT_GROUP = "fg2u.benchmarks"

#: Units a [`Metric`][fg2u.benchmarks.Metric] may declare. ``"%"`` is a percentage, ``"fraction"`` a ratio shown in percent,
#: ``"bytes"``/``"KiB"``/``"MiB"``/``"GiB"`` memory (shown in the best-fitting binary unit), ``"s"`` seconds,
#: ``""`` a plain number.
UNITS = ("%", "fraction", "bytes", "KiB", "MiB", "GiB", "s", "")

#: How the regression gate treats a declared metric (`Metric.kind`).
KINDS = ("stochastic", "deterministic", "info")
_DEFAULT_BOUNDS = {
    "%": (0.0, 100.0),
    "bytes": (0.0, math.inf),
    "KiB": (0.0, math.inf),
    "MiB": (0.0, math.inf),
    "GiB": (0.0, math.inf),
    "s": (0.0, math.inf),
}
_RECORD_FIELDS = ("task", "dataset", "config", "estimator")


def estimator_token(name: str) -> str:
    """Estimator name normalised for matching: lower case, ``²`` read as ``2``, only letters and digits
    (``"FG²U-ZO"``, ``"fg2u_zo"`` and ``"FG2U_ZO"`` all give ``"fg2uzo"``)."""
    return re.sub(r"[^a-z0-9]", "", name.replace("²", "2").lower())


def _check_name(kind: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{kind} must be a non-empty string, got {value!r}")


def _tuple_of_str(kind: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError(f"{kind} must be a sequence of strings, not one string ({value!r}); write ({value!r},)")
    items = tuple(value)
    for item in items:
        _check_name(f"each of {kind}", item)
    return items


@dataclasses.dataclass(frozen=True)
class Metric:
    """A headline metric of a benchmark.

    Attributes:
      name: the metric's name in the records' ``metrics`` (or ``wall_time_s`` / ``peak_memory_bytes``).
      direction: ``"higher"`` or ``"lower"`` is better.
      unit: one of `UNITS`: the unit of the recorded value.
      label: what a reader calls it (``"test accuracy"``); default: ``name``.
      tasks: the record tasks it is a headline of (empty: every task that records it).
      columns: the columns of its table, overriding the benchmark's ``columns`` (e.g. the unroll depth
        for a memory metric of a benchmark whose quality columns are data sets).
      kind: how the regression gate treats it (`KINDS`): ``"stochastic"`` — a band from the spread
        over seeds measured when the baseline was made (see `fg2u.leaderboard.regression`);
        ``"deterministic"`` — the same code and seed give the same value up to ``tolerance`` (relative;
        compiled memory, a gradient check at fixed seeds); ``"info"`` — shown, never gated.
      bounds: the plausible range of a value; a record outside it is rejected with its file and line
        (default from the unit: ``"%"`` → [0, 100]; memory and seconds → [0, ∞); otherwise unbounded).
      headline: shown as a headline table (``False``: gated only, e.g. the gradient check's cosines).
      tolerance: the relative tolerance of a deterministic metric.
    """

    name: str
    direction: str
    unit: str = ""
    label: str = ""
    tasks: tuple[str, ...] = ()
    columns: tuple[str, ...] | None = None
    kind: str = "stochastic"
    bounds: tuple[float, float] | None = None
    headline: bool = True
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        _check_name("Metric.name", self.name)
        if self.direction not in ("higher", "lower"):
            raise ValueError(f"Metric {self.name!r}: direction must be 'higher' or 'lower', got {self.direction!r}")
        if self.unit not in UNITS:
            raise ValueError(f"Metric {self.name!r}: unit must be one of {UNITS}, got {self.unit!r}")
        if self.kind not in KINDS:
            raise ValueError(f"Metric {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.bounds is None:
            object.__setattr__(self, "bounds", _DEFAULT_BOUNDS.get(self.unit, (-math.inf, math.inf)))
        low, high = self.bounds  # type: ignore[misc]
        if not low < high:
            raise ValueError(f"Metric {self.name!r}: bounds must be (low, high) with low < high, got {self.bounds}")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"Metric {self.name!r}: tolerance must be a finite number >= 0, got {self.tolerance!r}")
        object.__setattr__(self, "tasks", _tuple_of_str(f"Metric {self.name!r} tasks", self.tasks))
        if self.columns is not None:
            object.__setattr__(self, "columns", _tuple_of_str(f"Metric {self.name!r} columns", self.columns))
        if not self.label:
            object.__setattr__(self, "label", self.name)

    def applies_to(self, task: str) -> bool:
        """Whether this metric is a headline of records of ``task``."""
        return not self.tasks or task in self.tasks


@dataclasses.dataclass(frozen=True)
class Reference:
    """A published number, shown beside our runs of the same data set and estimator.

    Attributes:
      metric: the [`Metric`][fg2u.benchmarks.Metric] name it is comparable with.
      estimator: the method as the source names it.
      value: the published value (the low end when ``high`` is set: a range read off a figure).
      unit: ``"%"``, ``"fraction"`` or ``""`` (converted to the metric's unit where they are both one of
        ``"%"``/``"fraction"``; shown with its own unit otherwise).
      where: values of the benchmark's columns (and/or ``task``, ``dataset``, ``config`` or settings)
        that a headline column must have for the number to sit beside it, e.g. ``{"dataset": "mnist",
        "ipc": 1}``; keys not given match anything.
      source: where the number was published (paper, table or figure).
      estimators: record estimator names it sits beside (matched with
        [`estimator_token`][fg2u.benchmarks.estimator_token]);
        default: ``(estimator,)``.
      approximate: read off a plot rather than a table (shown with ``≈``).
      high: upper end of a range.
      decimals: decimals as published.
    """

    metric: str
    estimator: str
    value: float
    unit: str
    where: Mapping[str, Any]
    source: str
    estimators: tuple[str, ...] = ()
    approximate: bool = False
    high: float | None = None
    decimals: int = 2

    def __post_init__(self) -> None:
        _check_name("Reference.metric", self.metric)
        _check_name("Reference.estimator", self.estimator)
        _check_name("Reference.source", self.source)
        if not isinstance(self.value, (int, float)) or isinstance(self.value, bool) or not math.isfinite(self.value):
            raise ValueError(f"Reference {self.estimator!r}: value must be a finite number, got {self.value!r}")
        if self.unit not in ("%", "fraction", ""):
            raise ValueError(f"Reference {self.estimator!r}: unit must be '%', 'fraction' or '', got {self.unit!r}")
        if not isinstance(self.where, Mapping):
            raise TypeError(f"Reference {self.estimator!r}: where must be a mapping, got {type(self.where).__name__}")
        object.__setattr__(self, "where", dict(self.where))
        names = _tuple_of_str(f"Reference {self.estimator!r} estimators", self.estimators) or (self.estimator,)
        object.__setattr__(self, "estimators", names)

    def matches_estimator(self, estimator: str) -> bool:
        """Whether the record estimator ``estimator`` is the published method (see ``estimators``)."""
        return estimator_token(estimator) in {estimator_token(e) for e in self.estimators}

    def text(self, unit: str | None = None) -> str:
        """The value (or range) in ``unit`` (``"%"`` or ``"fraction"``), or in its own unit with its sign
        when ``unit`` is None or not convertible."""
        factors: dict[tuple[str, str | None], float] = {("%", "fraction"): 0.01, ("fraction", "%"): 100.0}
        factor = factors.get((self.unit, unit), 1.0)
        same = unit == self.unit or factor != 1.0
        decimals = max(0, self.decimals + max(0, round(-math.log10(factor))) - max(0, round(math.log10(factor))))
        low = f"{self.value * factor:.{decimals}f}"
        body = low if self.high is None else f"{low}–{self.high * factor:.{decimals}f}"
        sign = "" if same else {"%": " %", "fraction": "", "": ""}[self.unit]
        return ("≈" if self.approximate else "") + body + sign


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """What a benchmark declares (module docstring). Frozen; validated on construction.

    Attributes:
      name: the ``benchmark`` field of its records.
      smoke_command: argv of the smoke run (placeholders ``{python}``, ``{out}``, ``{repo_root}``,
        ``{seeds}``), or None when it has none (the regression check then skips it).
      metrics: headline metrics, in the order their tables are shown.
      columns: record fields or settings whose values make the headline columns.
      references: published numbers.
      title: a one-line description shown as the section heading.
      tables: record fields or settings that split the headline tables (default: task and config).
      labels: short names of columns in headers, e.g. ``{"num_steps": "T"}``.
      order: position among benchmarks (lower first; ties by name).
      smoke_requires: paths (with the same placeholders) that must exist for the smoke command to run,
        e.g. a script that only a source checkout has; the check says so and skips it otherwise.
      yardsticks: estimator names of its records that are yard sticks rather than competitors (no
        meta-gradient, a data baseline): shown, never marked best. Records can also opt out with a
        ``baseline`` setting.
      figures: PNG files the benchmark itself draws next to its records, as paths relative to the results
        folder (``"<benchmark>/figure.png"``): shown under its headline tables when they exist.
    """

    name: str
    smoke_command: tuple[str, ...] | None
    metrics: tuple[Metric, ...]
    columns: tuple[str, ...]
    references: tuple[Reference, ...] = ()
    title: str = ""
    tables: tuple[str, ...] = ("task", "config")
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    order: int = 100
    smoke_requires: tuple[str, ...] = ()
    yardsticks: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name("Benchmark.name", self.name)
        if self.smoke_command is not None:
            command = _tuple_of_str(f"Benchmark {self.name!r} smoke_command", self.smoke_command)
            if not command:
                raise ValueError(f"Benchmark {self.name!r}: smoke_command is empty; give an argv or None")
            object.__setattr__(self, "smoke_command", command)
        metrics = tuple(self.metrics)
        for metric in metrics:
            if not isinstance(metric, Metric):
                raise TypeError(f"Benchmark {self.name!r}: metrics must be fg2u.benchmarks.Metric, got {metric!r}")
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "columns", _tuple_of_str(f"Benchmark {self.name!r} columns", self.columns))
        object.__setattr__(self, "tables", _tuple_of_str(f"Benchmark {self.name!r} tables", self.tables))
        object.__setattr__(
            self, "smoke_requires", _tuple_of_str(f"Benchmark {self.name!r} smoke_requires", self.smoke_requires)
        )
        object.__setattr__(self, "labels", dict(self.labels))
        object.__setattr__(self, "yardsticks", _tuple_of_str(f"Benchmark {self.name!r} yardsticks", self.yardsticks))
        figures = _tuple_of_str(f"Benchmark {self.name!r} figures", self.figures)
        for figure in figures:
            if not figure.endswith(".png") or figure.startswith(("/", "..")) or "\\" in figure:
                raise ValueError(
                    f"Benchmark {self.name!r}: figures are PNG paths relative to the results folder "
                    f"(e.g. '{self.name}/figure.png'), got {figure!r}"
                )
        object.__setattr__(self, "figures", figures)
        refs = tuple(self.references)
        names = {m.name for m in metrics}
        for ref in refs:
            if not isinstance(ref, Reference):
                raise TypeError(f"Benchmark {self.name!r}: references must be fg2u.benchmarks.Reference, got {ref!r}")
            if ref.metric not in names:
                raise ValueError(
                    f"Benchmark {self.name!r}: reference {ref.estimator!r} names metric {ref.metric!r}, "
                    f"which is not one of its metrics {sorted(names)}"
                )
        object.__setattr__(self, "references", refs)
        if not self.title:
            object.__setattr__(self, "title", self.name)

    def metric(self, name: str) -> Metric | None:
        """The declared metric called ``name``, or None."""
        return next((m for m in self.metrics if m.name == name), None)

    def command(self, *, python: str, out: str, repo_root: str, seeds: Any = (0,)) -> list[str] | None:
        """The smoke argv with its placeholders filled in (None when the benchmark has none)."""
        if self.smoke_command is None:
            return None
        values = {"python": python, "out": out, "repo_root": repo_root}
        argv: list[str] = []
        for arg in self.smoke_command:
            if arg == "{seeds}":
                argv += [str(s) for s in seeds]
            else:
                try:
                    argv.append(arg.format(**values))
                except (KeyError, IndexError) as error:
                    raise ValueError(
                        f"Benchmark {self.name!r}: unknown placeholder {error} in smoke_command "
                        f"argument {arg!r}; use {{python}}, {{out}}, {{repo_root}} or {{seeds}}"
                    ) from None
        return argv

    def missing_requirements(self, *, repo_root: str) -> list[str]:
        """The ``smoke_requires`` paths that do not exist."""
        paths = [p.format(repo_root=repo_root) for p in self.smoke_requires]
        return [p for p in paths if not os.path.exists(p)]


@dataclasses.dataclass(frozen=True)
class DiscoveryIssue:
    """An entry point that could not be loaded or is not a [`Benchmark`][fg2u.benchmarks.Benchmark]."""

    entry_point: str
    message: str

    def __str__(self) -> str:
        return f"benchmark plugin {self.entry_point}: {self.message}"


def _entry_points(group: str):
    return list(entry_points(group=group))


def discover(group: str = ENTRY_POINT_GROUP, *, with_issues: bool = False):
    """Every installed benchmark declaration, sorted by ``(order, name)``.

    Loads each entry point of ``group``; one that fails to import, is not a [`Benchmark`][fg2u.benchmarks.Benchmark] or
    repeats a name is left out and reported. Returns the list, or ``(list, [DiscoveryIssue])`` with
    ``with_issues=True`` (otherwise the issues are printed on stderr).
    """
    found: dict[str, Benchmark] = {}
    issues: list[DiscoveryIssue] = []
    for ep in sorted(_entry_points(group), key=lambda e: (e.name, e.value)):
        label = f"{ep.name} = {ep.value}"
        try:
            value = ep.load()
        except Exception as error:  # a broken plugin must not break the others
            issues.append(
                DiscoveryIssue(
                    label,
                    f"cannot be loaded ({type(error).__name__}: {error}); "
                    "reinstall its package (pip install -e packages/<name>)",
                )
            )
            continue
        if callable(value) and not isinstance(value, Benchmark):
            try:
                value = value()
            except Exception as error:
                issues.append(DiscoveryIssue(label, f"factory failed ({type(error).__name__}: {error})"))
                continue
        if not isinstance(value, Benchmark):
            issues.append(DiscoveryIssue(label, f"is a {type(value).__name__}, not fg2u.benchmarks.Benchmark"))
            continue
        if value.name in found:
            issues.append(DiscoveryIssue(label, f"declares the name {value.name!r} a second time; ignored"))
            continue
        found[value.name] = value
    benchmarks = sorted(found.values(), key=lambda b: (b.order, b.name))
    if with_issues:
        return benchmarks, issues
    for issue in issues:
        print(f"warning: {issue}", file=sys.stderr)
    return benchmarks
