"""Rendering aggregated results: ``LEADERBOARD.md``, a self-contained ``leaderboard.html`` and PNG plots.

Everything about a benchmark comes from its declaration ([`fg2u.benchmarks`][fg2u.benchmarks], found through the
``fg2u.benchmarks`` entry points); this module holds no benchmark names.

Headline tables (first in both files)
    Per benchmark (in the declared ``order``), per headline [`Metric`][fg2u.benchmarks.Metric] and per value
    of the benchmark's ``tables`` fields (default: task and config): one compact table. Rows are
    estimators (entries of one estimator that differ in other settings get those settings in their
    label; yard sticks, `fg2u.leaderboard.aggregate.competes`, come last in italics), columns are
    the values of the metric's ``columns`` (data set and IPC, the unroll depth T, …), cells are ``mean ±
    std (n=k)`` over seeds in the metric's unit. The best competing mean of each column is bold. Where a
    published [`Reference`][fg2u.benchmarks.Reference] matches a column, a ``paper`` column follows it with
    the published number beside ours (a published method without a run of ours gets a row of its own).
    One figure per benchmark and metric (``plots/<benchmark>-<metric>.png``) draws the same tables: a line
    per estimator against a numeric column (log axes for memory), otherwise bars.

Appendix: full tables
    One wide table per benchmark with every metric and setting (see `build_tables`): columns task,
    dataset, config, the problem settings that vary, estimator, the entries' other varying settings
    ("settings"), device (if it varies), n, then the metrics (declared headline metrics first, then
    higher-is-better, lower-is-better, memory and time). Best entries of each comparison group
    (`fg2u.leaderboard.aggregate.comparison_key`) are bold; the benchmark's reference rows are
    marked ``paper [k]`` with the source as footnote k. Records of a benchmark that no installed plugin
    declares are shown here only.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from fg2u.benchmarks import Benchmark, Metric, Reference, discover
from fg2u.leaderboard.aggregate import (
    GroupKey,
    GroupSummary,
    LoadIssue,
    MetricStats,
    aggregate,
    best_entries,
    comparison_key,
    competes,
    is_problem_setting,
    load_results,
    metric_direction,
    require,
)
from fg2u.leaderboard.budgets import render_views

__all__ = [
    "Cell",
    "Table",
    "Headline",
    "build_tables",
    "build_headlines",
    "render_markdown",
    "render_html",
    "plot_headlines",
    "render_all",
    "format_stats",
    "format_value",
]

_MAX_PANELS = 9
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
_LINES = ("-", "--", ":")
_ARROWS = {"higher": "↑", "lower": "↓"}
_MEMORY_UNITS = {"bytes": 1.0, "KiB": 2.0**10, "MiB": 2.0**20, "GiB": 2.0**30}


def _mib_converter(scale: float) -> Callable[[float], float]:
    """Converts a value counted in units of ``scale`` bytes to MiB."""
    return lambda v: v * scale / 2**20


# ----------------------------------------------------------------------------------- table structure
@dataclasses.dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False


@dataclasses.dataclass
class Table:
    """A full (appendix) benchmark table, rendered by both the Markdown and the HTML writer."""

    benchmark: str
    columns: list[str]
    rows: list[tuple[str, list[Cell]]]  # (kind: "run" | "reference", cells)
    common_settings: dict[str, Any]
    footnotes: list[str]
    directions: dict[str, str | None]
    title: str = ""


@dataclasses.dataclass
class Headline:
    """A compact headline table: one benchmark, one metric, one value of the benchmark's ``tables``.

    ``columns`` are the header texts (the first is ``"estimator"``); ``rows`` are ``(kind, cells)`` with
    kind ``"run"`` (a competing estimator), ``"baseline"`` (a yard stick) or ``"paper"`` (a published
    method without a run of ours); ``paper_columns`` are the indices of the published-number columns.
    ``values`` holds, per row label and column key (values of ``column_names``), the stats drawn in the
    plots; ``competing`` the labels of competing rows.
    """

    benchmark: str
    metric: Metric
    caption: str
    where: str
    columns: list[str]
    rows: list[tuple[str, list[Cell]]]
    paper_columns: set[int]
    footnotes: list[str]
    values: dict[str, dict[tuple, MetricStats]]
    column_keys: list[tuple]
    column_names: tuple[str, ...]
    competing: set[str]


def _words(name: str) -> set[str]:
    return set(w for w in re.split(r"[^a-z0-9]+", name.lower()) if w)


def _is_memory(name: str) -> bool:
    return bool(_words(name) & {"bytes", "memory", "mem"})


_BYTE_UNITS = {"kib": 2.0**10, "mib": 2.0**20, "gib": 2.0**30, "kb": 1e3, "mb": 1e6, "gb": 1e9}


def _bytes_per_unit(name: str) -> float:
    """Bytes per unit of a memory metric: ``peak_memory_mib`` → 2**20; plain bytes → 1."""
    for word in _words(name):
        if word in _BYTE_UNITS:
            return _BYTE_UNITS[word]
    return 1.0


def _is_seconds(name: str) -> bool:
    words = _words(name)
    return bool(words & {"s", "seconds", "sec"}) and not (words & {"per", "ratio"})


def _is_time(name: str) -> bool:
    return bool(_words(name) & {"time", "seconds", "latency", "wall"})


def _metric_order(name: str) -> tuple:
    direction = metric_direction(name)
    if name == "wall_time_s":
        return (6, name)
    if _is_time(name):
        return (5, name)
    if _is_memory(name):
        return (4 if name == "memory_peak_rss_bytes" else 3, name)
    if direction == "higher":
        return (0, name)
    if direction == "lower":
        return (1, name)
    return (2, name)


def _fmt_number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _fmt_spread(value: float) -> str:
    """A std: 2–3 significant digits, never in e-notation between 1e-3 and 1e5."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 1e-3 <= abs(value) < 1e5:
        text = f"{value:.2g}"
        return f"{value:.0f}" if "e" in text else text
    return f"{value:.1e}"


def _byte_unit(value: float) -> tuple[float, str]:
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        if abs(value) >= 1024**power:
            return 1024.0**power, unit
    return 1.0, "B"


def format_stats(name: str, stats: MetricStats, row_n: int | None = None, *, unit: str | None = None) -> str:
    """``mean ± std`` (bytes in KiB/MiB/GiB), with ``(n=k)`` when the metric has fewer values than the
    row has seeds and ``(k non-finite)`` for diverged runs. ``unit``: the declared unit of a headline
    metric (`fg2u.benchmarks.UNITS`); other metrics are shown by the words of their name (a
    display choice only: ``*_bytes``/``*_mib`` as memory, ``*_s``/``seconds`` as time)."""
    if unit is not None and unit != "fraction":
        text = format_value(stats, unit, show_n=False)
        if row_n is not None and stats.n + stats.n_nonfinite < row_n:
            text += f" [n={stats.n + stats.n_nonfinite}]"
        return text
    if stats.n == 0:
        text = "non-finite"
    elif _is_seconds(name) and stats.mean > 0:
        scale, unit = (1.0, "s") if stats.mean >= 1 else (1e-3, "ms") if stats.mean >= 1e-3 else (1e-6, "µs")
        text = f"{stats.mean / scale:.4g}"
        if stats.std is not None:
            text += f" ± {_fmt_spread(stats.std / scale)}"
        text += f" {unit}"
    elif _is_memory(name):
        per_unit = _bytes_per_unit(name)
        scale, unit = _byte_unit(stats.mean * per_unit)
        scale /= per_unit
        text = f"{stats.mean / scale:.4g}"
        if stats.std is not None:
            text += f" ± {_fmt_spread(stats.std / scale)}"
        text += f" {unit}"
    else:
        text = _fmt_number(stats.mean)
        if stats.std is not None:
            text += f" ± {_fmt_spread(stats.std)}"
    extras = []
    if row_n is not None and stats.n + stats.n_nonfinite < row_n:
        extras.append(f"n={stats.n + stats.n_nonfinite}")
    if stats.n_nonfinite:
        extras.append(f"{stats.n_nonfinite} non-finite")
    return text + (f" ({', '.join(extras)})" if extras else "")


def _scaled(value: float, unit: str) -> tuple[float, str]:
    """A value in ``unit`` as (number, shown unit): fractions in percent, memory in KiB/MiB/GiB, seconds
    in s/ms/µs."""
    if unit == "fraction":
        return value * 100.0, "%"
    if unit in _MEMORY_UNITS:
        scale, shown = _byte_unit(value * _MEMORY_UNITS[unit])
        return value * _MEMORY_UNITS[unit] / scale, shown
    if unit == "s":
        scale, shown = (1.0, "s") if abs(value) >= 1 else (1e-3, "ms") if abs(value) >= 1e-3 else (1e-6, "µs")
        return value / scale, shown
    return value, unit


def format_value(stats: MetricStats, unit: str, *, show_unit: bool = False, show_n: bool = True) -> str:
    """A headline cell: ``mean ± std (n=k)`` in the display form of ``unit`` (`_scaled`; memory and
    time always carry their unit, ``%`` only with ``show_unit``); ``(k non-finite)`` for diverged runs."""
    if stats.n == 0:
        text = "non-finite"
    else:
        mean, shown = _scaled(stats.mean, unit)
        factor = mean / stats.mean if stats.mean else _scaled(1.0, unit)[0]
        text = _fmt_number(mean)
        if stats.std is not None:
            text += f" ± {_fmt_spread(stats.std * factor)}"
        if shown and (show_unit or unit in _MEMORY_UNITS or unit == "s"):
            text += f" {shown}" if shown != "%" else " %"
    extras = []
    if show_n:
        extras.append(f"n={stats.n + stats.n_nonfinite}")
    if stats.n_nonfinite:
        extras.append(f"{stats.n_nonfinite} non-finite")
    return text + (f" ({', '.join(extras)})" if extras else "")


def _display_unit(unit: str) -> str:
    """The unit a headline caption names for a declared unit (memory and time: per cell)."""
    return {"fraction": "%", "%": "%"}.get(unit, "")


def field_value(key: GroupKey, name: str) -> Any:
    """A record field (``task``, ``dataset``, ``config``, ``estimator``, ``device``) or a setting of ``key``
    (None when absent)."""
    if name in ("benchmark", "task", "dataset", "config", "estimator", "device"):
        return getattr(key, name)
    return key.settings_dict.get(name)


def _label(bench: Benchmark, name: str) -> str:
    """A setting's column label: the declared one, else its name without the ``config.`` / ``estimator.``
    prefix of the record's settings groups."""
    short = name.split(".", 1)[1] if name.startswith(("config.", "estimator.")) else name
    return bench.labels.get(name, bench.labels.get(short, short))


def _describe(bench: Benchmark, names: Sequence[str], values: Sequence[Any], *, bare: Sequence[str] = ()) -> str:
    """``"mnist · IPC=1"``: record fields in ``bare`` (and data sets, tasks) by value, others as label=value."""
    parts = []
    for name, value in zip(names, values):
        if value is None:
            continue
        if name in ("task", "dataset", "config") or name in bare:
            parts.append(str(value) if name != "config" else f"config {value}")
        else:
            parts.append(f"{_label(bench, name)}={value}")
    return " · ".join(parts) if parts else "all runs"


def _distinguishing(dicts: Sequence[Mapping[str, Any]]) -> list[str]:
    """A few setting names whose values tell ``dicts`` apart: greedily the name that separates the most
    still-confused pairs (ties: the shorter values, then the name), until every pair that differs at all is
    separated. Settings that only co-vary with a chosen one (a class name beside the CLI name) are left out."""

    def value(d: Mapping[str, Any], name: str) -> str:
        return repr(d.get(name, "<absent>"))

    names = sorted({n for d in dicts for n in d})
    pairs = [
        (i, j)
        for i in range(len(dicts))
        for j in range(i + 1, len(dicts))
        if any(value(dicts[i], n) != value(dicts[j], n) for n in names)
    ]

    def score(name: str, pairs: Sequence[tuple[int, int]]) -> tuple[int, int]:
        split = sum(value(dicts[i], name) != value(dicts[j], name) for i, j in pairs)
        return split, -sum(len(value(d, name)) for d in dicts)

    chosen: list[str] = []
    while pairs:
        scores = {name: score(name, pairs) for name in names}
        best = max(names, key=scores.__getitem__)  # max keeps the first (alphabetical) of ties
        chosen.append(best)
        pairs = [(i, j) for i, j in pairs if value(dicts[i], best) == value(dicts[j], best)]
    return chosen


def _row_labels(bench: Benchmark, entries: Sequence[GroupSummary], column_of) -> dict[GroupKey, str]:
    """Estimator names, plus the settings that tell apart entries of one estimator in one column."""
    slots: dict[tuple, list[GroupKey]] = {}
    for s in entries:
        slots.setdefault((s.key.estimator, column_of(s)), []).append(s.key)
    extra: dict[str, set[str]] = {}
    for (estimator, _), keys in slots.items():
        if len(keys) > 1:
            extra.setdefault(estimator, set()).update(_distinguishing([k.settings_dict for k in keys]))
    labels = {}
    for s in entries:
        settings = s.key.settings_dict
        shown = [f"{_label(bench, n)}={settings[n]}" for n in sorted(extra.get(s.key.estimator, ())) if n in settings]
        if s.key.device is not None and len({e.key.device for e in entries}) > 1:
            shown.append(f"device={s.key.device}")
        labels[s.key] = s.key.estimator + (f" ({', '.join(shown)})" if shown else "")
    return labels


def _sort_token(value: Any) -> tuple:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _reference_matches(ref: Reference, key: GroupKey) -> bool:
    return all(field_value(key, name) == value for name, value in ref.where.items())


def build_headlines(
    summaries: Sequence[GroupSummary], benchmarks: Sequence[Benchmark]
) -> tuple[list[Headline], dict[str, list[Reference]]]:
    """The headline tables of every declared benchmark (module docstring), and per benchmark the
    published numbers that matched no column of ours (shown in the appendix only)."""
    headlines: list[Headline] = []
    unmatched: dict[str, list[Reference]] = {}
    yard = {b.name: b.yardsticks for b in benchmarks}
    for bench in benchmarks:
        entries = [s for s in summaries if s.key.benchmark == bench.name]
        shown_refs: set[int] = set()
        for metric in (m for m in bench.metrics if m.headline):
            columns = metric.columns if metric.columns is not None else bench.columns
            relevant = [s for s in entries if metric.applies_to(s.key.task) and metric.name in s.metrics]
            split = [n for n in bench.tables if n not in columns]
            groups: dict[tuple, list[GroupSummary]] = {}
            for s in relevant:
                groups.setdefault(tuple(field_value(s.key, n) for n in split), []).append(s)
            refs = [r for r in bench.references if r.metric == metric.name]
            for table_key in sorted(groups, key=lambda k: [_sort_token(v) for v in k]):
                group = groups[table_key]
                column_of = lambda s, columns=columns: tuple(field_value(s.key, n) for n in columns)  # noqa: E731
                column_keys = sorted({column_of(s) for s in group}, key=lambda k: [_sort_token(v) for v in k])
                labels = _row_labels(bench, group, column_of)
                # rows: competing estimators by name, then yard sticks
                row_labels = sorted(
                    dict.fromkeys(labels[s.key] for s in group),
                    key=lambda lb: (not next(competes(s.key, yard) for s in group if labels[s.key] == lb), lb.lower()),
                )
                values: dict[str, dict[tuple, MetricStats]] = {lb: {} for lb in row_labels}
                problems: dict[str, dict[tuple, tuple]] = {lb: {} for lb in row_labels}  # comparison key per cell
                partial: set[tuple[str, tuple]] = set()  # cells with runs of an invocation that did not complete
                for s in group:
                    values[labels[s.key]].setdefault(column_of(s), s.metrics[metric.name])
                    problems[labels[s.key]].setdefault(column_of(s), comparison_key(s.key))
                    if s.partial:
                        partial.add((labels[s.key], column_of(s)))
                competing = {labels[s.key] for s in group if competes(s.key, yard)}
                estimator_of = {labels[s.key]: s.key.estimator for s in group}
                # published numbers per column
                representative = {ck: next(s for s in group if column_of(s) == ck) for ck in column_keys}
                col_refs = {
                    ck: [i for i, r in enumerate(refs) if _reference_matches(r, representative[ck].key)]
                    for ck in column_keys
                }
                paper_only: list[str] = []
                for ck in column_keys:
                    for i in col_refs[ck]:
                        r = refs[i]
                        if (
                            not any(r.matches_estimator(estimator_of[lb]) for lb in row_labels)
                            and r.estimator not in paper_only
                        ):
                            paper_only.append(r.estimator)
                footnotes: list[str] = []
                header = ["estimator"]
                paper_idx: set[int] = set()
                for ck in column_keys:
                    header.append(_describe(bench, columns, ck))
                    if col_refs[ck]:
                        paper_idx.add(len(header))
                        header.append("paper")
                counts = {st.n + st.n_nonfinite for per in values.values() for st in per.values()}
                same_n = counts.pop() if len(counts) == 1 else None
                rows: list[tuple[str, list[Cell]]] = []
                for lb in row_labels + paper_only:
                    kind = "paper" if lb in paper_only else "run" if lb in competing else "baseline"
                    estimator = lb if kind == "paper" else estimator_of[lb]
                    cells = [Cell(lb)]
                    for ck in column_keys:
                        stats = values.get(lb, {}).get(ck)
                        best = False
                        if stats is not None and kind == "run" and stats.n and math.isfinite(stats.mean):
                            pool = [
                                values[o][ck].mean
                                for o in competing
                                if ck in values[o]
                                and values[o][ck].n
                                and math.isfinite(values[o][ck].mean)
                                and problems[o][ck] == problems[lb][ck]  # runs of other problems do not compete
                            ]
                            target = max(pool) if metric.direction == "higher" else min(pool)
                            best = len(pool) >= 2 and len(set(pool)) > 1 and stats.mean == target
                        text = "—" if stats is None else format_value(stats, metric.unit, show_n=same_n is None)
                        if (lb, ck) in partial:
                            text += " (partial run)"
                        cells.append(Cell(text, best))
                        if col_refs[ck]:
                            texts = []
                            for i in col_refs[ck]:
                                r = refs[i]
                                if (kind == "paper" and r.estimator == lb) or (
                                    kind != "paper" and r.matches_estimator(estimator)
                                ):
                                    if r.source not in footnotes:
                                        footnotes.append(r.source)
                                    texts.append(
                                        f"{r.text(_display_unit(metric.unit) or None)} [{footnotes.index(r.source) + 1}]"
                                    )
                                    shown_refs.add(id(r))
                            cells.append(Cell(" / ".join(texts)))
                    rows.append((kind, cells))
                arrow = _ARROWS[metric.direction]
                unit = _display_unit(metric.unit)
                where = _describe(bench, split, table_key)
                if same_n is not None:
                    where += f" · n = {same_n} seed{'s' if same_n != 1 else ''} per cell"
                caption = (
                    f"{bench.name} · {metric.label}{f' ({unit})' if unit else ''} {arrow} {metric.direction} is better"
                )
                headlines.append(
                    Headline(
                        bench.name,
                        metric,
                        caption,
                        where,
                        header,
                        rows,
                        paper_idx,
                        footnotes,
                        values,
                        column_keys,
                        tuple(columns),
                        competing,
                    )
                )
        unmatched[bench.name] = [r for r in bench.references if id(r) not in shown_refs]
    return headlines, unmatched


# ---------------------------------------------------------------------------------- appendix tables
def _settings_text(value: Any) -> str:
    return "None" if value is None else str(value)


def _declared(benchmarks: Sequence[Benchmark]) -> dict[str, Benchmark]:
    return {b.name: b for b in benchmarks}


def _benchmark_order(names, benchmarks: Sequence[Benchmark]) -> list[str]:
    declared = {b.name: i for i, b in enumerate(benchmarks)}
    return sorted(set(names), key=lambda n: (declared.get(n, len(declared)), n))


def build_tables(summaries: Sequence[GroupSummary], benchmarks: Sequence[Benchmark] = ()) -> list[Table]:
    """One full `Table` per benchmark found in ``summaries`` or declared in ``benchmarks`` (with
    its published numbers as ``paper [k]`` rows), in the declared order, undeclared ones last."""
    declared = _declared(benchmarks)
    yard = {b.name: b.yardsticks for b in benchmarks}
    best = best_entries(summaries, yard, {(b.name, m.name): m.direction for b in benchmarks for m in b.metrics})
    tables = []
    for name in _benchmark_order([s.key.benchmark for s in summaries] + list(declared), benchmarks):
        bench = declared.get(name)
        entries = [s for s in summaries if s.key.benchmark == name]
        refs = list(bench.references) if bench else []
        all_names: list[str] = []
        for s in entries:
            all_names += [n for n, _ in s.key.settings if n not in all_names]
        varying, common = [], {}
        for setting in all_names:
            present = [s.key.settings_dict[setting] for s in entries if setting in s.key.settings_dict]
            if len({repr(v) for v in present}) > 1:
                varying.append(setting)
            else:
                common[setting] = present[0]
        problem = (
            list(bench.columns) + [n for m in bench.metrics for n in (m.columns or ())] + list(bench.tables)
            if bench
            else []
        )
        problem += [n for n in all_names if is_problem_setting(n)]
        problem = [n for n in dict.fromkeys(problem) if n not in ("task", "dataset", "config")]
        other = [n for n in varying if n not in problem]
        varying = sorted((n for n in varying if n in problem), key=problem.index)
        for ref in refs:
            for setting in ref.where:
                if setting not in ("task", "dataset", "config") and setting not in varying:
                    varying.append(setting)
                    common.pop(setting, None)
        show_device = len({s.key.device for s in entries}) > 1
        metric_names: list[str] = []
        for s in entries:
            metric_names += [m for m in s.metrics if m not in metric_names]
        headline_names = [m.name for m in bench.metrics] if bench else []
        metric_names.sort(
            key=lambda m: (headline_names.index(m) if m in headline_names else len(headline_names), _metric_order(m))
        )
        extra = [f"{r.metric} (paper)" for r in refs if r.metric not in metric_names]
        metric_columns = metric_names + list(dict.fromkeys(extra))
        fixed = ["row", "task", "dataset", "config", *varying, "estimator"] + (["settings"] if other else [])
        fixed += (["device"] if show_device else []) + ["n"]
        rows: list[tuple[str, list[Cell]]] = []
        entries.sort(
            key=lambda s: (
                s.key.task,
                s.key.dataset,
                s.key.config,
                str(s.key.device),
                [_sort_token(s.key.settings_dict.get(n)) for n in varying],
                not competes(s.key, yard),
                s.key.estimator,
                repr(s.key.settings),
            )
        )
        units = {m.name: m.unit for m in bench.metrics} if bench else {}
        for s in entries:
            settings = s.key.settings_dict
            cells = [Cell("ours"), Cell(s.key.task), Cell(s.key.dataset), Cell(s.key.config)]
            cells += [Cell(_settings_text(settings[n]) if n in settings else "—") for n in varying]
            cells.append(Cell(s.key.estimator))
            if other:
                cells.append(Cell(", ".join(f"{n}={_settings_text(settings[n])}" for n in other if n in settings)))
            if show_device:
                cells.append(Cell(str(s.key.device)))
            labels = [f"{s.partial} partial"] if s.partial else []
            labels += [f"{s.not_ok.count(st)} {st}" for st in dict.fromkeys(s.not_ok)]
            cells.append(Cell(str(s.n) + (f" ({', '.join(labels)})" if labels else "")))
            for metric in metric_columns:
                stats = s.metrics.get(metric)
                cells.append(
                    Cell(
                        "" if stats is None else format_stats(metric, stats, s.n, unit=units.get(metric)),
                        (s.key, metric) in best,
                    )
                )
            rows.append(("run", cells))
        footnotes: list[str] = []
        for ref in refs:
            if ref.source not in footnotes:
                footnotes.append(ref.source)
            number = footnotes.index(ref.source) + 1
            column = ref.metric if ref.metric in metric_names else f"{ref.metric} (paper)"
            unit = units.get(ref.metric) if column == ref.metric else None
            cells = [
                Cell(f"paper [{number}]"),
                Cell(str(ref.where.get("task", ""))),
                Cell(str(ref.where.get("dataset", ""))),
                Cell("paper"),
            ]
            cells += [Cell(_settings_text(ref.where[n]) if n in ref.where else "") for n in varying]
            cells.append(Cell(ref.estimator))
            cells += [Cell("")] * (bool(other) + show_device)
            cells.append(Cell("—"))
            cells += [
                Cell(ref.text(unit if unit in ("%", "fraction") else None) if m == column else "")
                for m in metric_columns
            ]
            rows.append(("reference", cells))
        directions = {
            m: (cast(Metric, bench.metric(m)).direction if bench and bench.metric(m) else metric_direction(m))
            for m in metric_columns
        }
        tables.append(
            Table(
                name,
                fixed + metric_columns,
                rows,
                common,
                footnotes,
                directions,
                bench.title if bench else f"{name} (no installed plugin declares this benchmark)",
            )
        )
    return tables


# ------------------------------------------------------------------------------------------- markdown
def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _direction_note(table: Table) -> str:
    return ", ".join(f"{name} {_ARROWS[d]}" for name, d in table.directions.items() if d in _ARROWS)


_INTRO = (
    "Cells: mean ± sample std (ddof = 1) over n seeds. **Bold**: best competing entry of its column; "
    "yard sticks (no meta-gradient, data baselines) in italics, never marked. `paper`: the published "
    "number (footnote), from the authors' full-scale runs."
)


def _md_headline(h: Headline) -> list[str]:
    lines = [f"**{_md_escape(h.caption)}** — {_md_escape(h.where)}", ""]
    lines.append("| " + " | ".join(_md_escape(c) for c in h.columns) + " |")
    lines.append("|" + "|".join(":--" if i == 0 else "--:" for i in range(len(h.columns))) + "|")
    for kind, cells in h.rows:
        texts = []
        for i, cell in enumerate(cells):
            text = _md_escape(cell.text)
            if cell.best and text:
                text = f"**{text}**"
            elif text and (kind != "run" and i == 0 or i in h.paper_columns):
                text = f"_{text}_"
            texts.append(text)
        lines.append("| " + " | ".join(texts) + " |")
    lines.append("")
    for number, source in enumerate(h.footnotes, start=1):
        lines.append(f"[{number}] {_md_escape(source)}  ")
    if h.footnotes:
        lines.append("")
    return lines


def render_markdown(
    tables: Sequence[Table],
    issues: Sequence[LoadIssue] = (),
    plots: Sequence[Path] = (),
    *,
    headlines: Sequence[Headline] = (),
    titles: dict[str, str] | None = None,
    unmatched: dict[str, list[Reference]] | None = None,
    out_dir: Path | None = None,
    results_label: str = "results",
    figures: Mapping[str, Sequence[Path]] | None = None,
    views: Mapping[str, Sequence[Any]] | None = None,
) -> str:
    """The text of ``LEADERBOARD.md``: headline tables and plots per benchmark (``figures``: the benchmarks' own
    PNGs by benchmark name, after the generated plots), then the full tables as an appendix; plot links are
    relative to ``out_dir``."""
    figures = figures or {}
    titles = titles or {}
    lines = [
        "# fg2u leaderboard",
        "",
        f"Generated by `python -m fg2u.leaderboard render` from `{results_label}/**/*.jsonl`. " + _INTRO,
        "",
        "The full tables, with every metric and setting, are in the [appendix](#appendix-full-tables) "
        "and in `leaderboard.html`.",
        "",
    ]
    link = lambda p: Path(os.path.relpath(p, out_dir) if out_dir is not None else str(p)).as_posix()  # noqa: E731
    names = list(dict.fromkeys([h.benchmark for h in headlines]))
    for name in names:
        lines += [f"## {name} — {_md_escape(titles.get(name, name))}", ""]
        for h in (h for h in headlines if h.benchmark == name):
            lines += _md_headline(h)
        for plot in [
            *(p for p in plots if Path(p).stem.startswith(f"{name}-") and "-curves-" not in Path(p).stem),
            *figures.get(name, ()),
        ]:
            lines += [f"![{Path(plot).stem}]({link(plot)})", ""]
        budget_view = (views or {}).get(name, ())
        if budget_view:
            lines += [f"### {name} — at equal time and within memory budgets", ""]
            for item in budget_view:
                lines += [f"![{Path(item).stem}]({link(item)})", ""] if isinstance(item, Path) else [item]
    if not headlines:
        lines += ["_No headline table: no installed benchmark declares metrics that the records have._", ""]
    lines += [
        "## Appendix: full tables",
        "",
        "Every metric and setting. **Bold**: best entry of its comparison group (same task, data set, "
        "config, device and problem settings; the unroll depth counts for memory and time only). Rows "
        "`paper [k]` are published numbers (footnote k).",
        "",
    ]
    for table in tables:
        lines += [f"### {table.benchmark} — {_md_escape(table.title)}", ""]
        runs = sum(1 for kind, _ in table.rows if kind == "run")
        if not runs:
            lines += ["_No runs recorded yet; only the published numbers are shown._", ""]
        note = _direction_note(table)
        if note:
            lines += [f"Direction: {note}.", ""]
        lines.append("| " + " | ".join(_md_escape(c) for c in table.columns) + " |")
        lines.append("|" + "|".join("---" for _ in table.columns) + "|")
        for kind, cells in table.rows:
            texts = []
            for cell in cells:
                text = _md_escape(cell.text)
                if cell.best and text:
                    text = f"**{text}**"
                elif kind == "reference" and text:
                    text = f"_{text}_"
                texts.append(text)
            lines.append("| " + " | ".join(texts) + " |")
        lines.append("")
        if table.common_settings:
            common = ", ".join(f"`{k}={v}`" for k, v in table.common_settings.items())
            lines += [f"Settings with one value (in the runs that set them): {common}.", ""]
        for number, source in enumerate(table.footnotes, start=1):
            lines.append(f"[{number}] {source}  ")
        if table.footnotes:
            lines.append("")
        left = (unmatched or {}).get(table.benchmark)
        if left and runs:
            lines += [
                f"{len(left)} published number(s) have no run of ours on the same data set / setting; "
                "they appear only in this table.",
                "",
            ]
    if issues:
        lines += ["## Skipped records", "", f"{len(issues)} line(s) were not used:", ""]
        lines += [f"- `{_md_escape(str(issue))}`" for issue in issues[:50]]
        if len(issues) > 50:
            lines.append(f"- … and {len(issues) - 50} more")
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- html
_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 0.8rem auto;
       max-width: 1400px; padding: 0 1rem; color: #1d1d1f; }
h1 { font-size: 1.35rem; margin: 0.2rem 0; }
h2 { font-size: 1.1rem; margin: 1.0rem 0 0.3rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.0rem; margin: 1.2rem 0 0.3rem; }
nav { font-size: 0.85rem; margin: 0.2rem 0 0.4rem; } nav a { margin-right: 0.9rem; }
.bench { display: flex; flex-wrap: nowrap; gap: 0.6rem 1.0rem; align-items: flex-start; }
.tables { display: flex; flex-wrap: wrap; gap: 0.5rem 1.2rem; align-items: flex-start; flex: 1 1 auto; min-width: 0; }
.plots { flex: 0 0 500px; } .plots img { width: 100%; max-width: 500px; display: block; margin-bottom: 0.3rem; }
@media (max-width: 1100px) { .bench { flex-wrap: wrap; } .plots { flex: 1 1 100%; } }
.headline-block { max-width: 100%; overflow-x: auto; }
.caption { font-size: 0.82rem; margin: 0 0 0.1rem; } .caption b { font-weight: 600; }
.caption .where { color: #555; }
table { border-collapse: collapse; font-size: 0.8rem; margin: 0.2rem 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.12rem 0.4rem; text-align: right; white-space: nowrap; }
th { background: #f0f3f7; } th:first-child, td:first-child { text-align: left; }
table.headline td.paper, table.headline th.paper { background: #faf8f0; color: #6b5d2f; font-style: italic; }
tr.baseline td:first-child, tr.paper td { color: #777; font-style: italic; }
td.best { background: #dff3e0; font-weight: 700; }
.note { color: #555; font-size: 0.8rem; margin: 0.2rem 0; max-width: 95ch; }
.scroll { overflow-x: auto; max-width: 100%; }
table.full td, table.full th { text-align: left; }
table.full td.settings { white-space: normal; min-width: 18em; max-width: 36em; font-size: 0.72rem; }
tr.reference td { background: #faf8f0; color: #555; font-style: italic; }
img { border: 1px solid #eee; }
code { background: #f4f4f4; padding: 0 0.2rem; }
"""


def _html_headline(h: Headline) -> str:
    e = html.escape
    head = "".join(
        f'<th class="paper">{e(c)}</th>' if i in h.paper_columns else f"<th>{e(c)}</th>"
        for i, c in enumerate(h.columns)
    )
    out = [
        f'<table class="headline" data-benchmark="{e(h.benchmark)}" data-metric="{e(h.metric.name)}">'
        f"<thead><tr>{head}</tr></thead><tbody>"
    ]
    for kind, cells in h.rows:
        tds = []
        for i, c in enumerate(cells):
            cls = "best" if c.best else "paper" if i in h.paper_columns else ""
            tds.append(f'<td class="{cls}">{e(c.text)}</td>' if cls else f"<td>{e(c.text)}</td>")
        out.append(f'<tr class="{kind}">{"".join(tds)}</tr>')
    out.append("</tbody></table>")
    notes = "".join(f'<p class="note">[{i}] {e(s)}</p>' for i, s in enumerate(h.footnotes, start=1))
    caption = f'<div class="caption"><b>{e(h.caption)}</b><br><span class="where">{e(h.where)}</span></div>'
    return f'<div class="headline-block">{caption}{"".join(out)}{notes}</div>'


def render_html(
    tables: Sequence[Table],
    issues: Sequence[LoadIssue] = (),
    plots: Sequence[Path] = (),
    *,
    headlines: Sequence[Headline] = (),
    titles: dict[str, str] | None = None,
    figures: Mapping[str, Sequence[Path]] | None = None,
) -> str:
    """The text of ``leaderboard.html``: headline tables with their plots first (one block per benchmark,
    tables left, plots right — the generated ones, then ``figures``, the benchmark's own PNGs by benchmark
    name — so a 1400 px wide first screen shows results), then the full tables (horizontally scrollable, the
    settings column wrapped). Inline CSS, plots as base64 PNG, nothing loaded from elsewhere."""
    e = html.escape
    titles = titles or {}
    names = list(dict.fromkeys([h.benchmark for h in headlines]))
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>fg2u leaderboard</title>',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_CSS}</style></head><body>",
        "<h1>fg2u leaderboard</h1>",
        "<nav>" + "".join(f'<a href="#{e(n)}">{e(n)}</a>' for n in names) + '<a href="#appendix">full tables</a></nav>',
        f'<p class="note">{e(_INTRO.replace("**", ""))}</p>',
    ]
    figures = figures or {}
    own = [p for name in names for p in figures.get(name, ())]
    data = {p: base64.b64encode(Path(p).read_bytes()).decode("ascii") for p in [*plots, *own]}
    for name in names:
        out.append(
            f'<h2 id="{e(name)}">{e(name)} — {e(titles.get(name, name))}</h2><div class="bench"><div class="tables">'
        )
        out += [_html_headline(h) for h in headlines if h.benchmark == name]
        out.append('</div><div class="plots">')
        for plot in [*(p for p in plots if Path(p).stem.startswith(f"{name}-")), *figures.get(name, ())]:
            out.append(
                f'<img alt="{e(Path(plot).stem)}" title="{e(Path(plot).stem)}" src="data:image/png;base64,{data[plot]}">'
            )
        out.append("</div></div>")
    out.append('<h2 id="appendix">Appendix: full tables</h2>')
    out.append(
        '<p class="note">Every metric and setting. Highlighted: best entry of its comparison group (same '
        "task, data set, config, device and problem settings; the unroll depth counts for memory and time "
        "only). Shaded italic rows: published numbers, never marked best.</p>"
    )
    for table in tables:
        out.append(f'<h3 id="full-{e(table.benchmark)}">{e(table.benchmark)} — {e(table.title)}</h3>')
        note = _direction_note(table)
        if note:
            out.append(f'<p class="note">Direction: {e(note)}.</p>')
        settings_col = table.columns.index("settings") if "settings" in table.columns else -1
        out.append(
            '<div class="scroll"><table class="full"><thead><tr>'
            + "".join(f"<th>{e(c)}</th>" for c in table.columns)
            + "</tr></thead><tbody>"
        )
        for kind, cells in table.rows:
            tds = "".join(
                f'<td class="best">{e(c.text)}</td>'
                if c.best and c.text
                else f'<td class="settings">{e(c.text)}</td>'
                if i == settings_col
                else f"<td>{e(c.text)}</td>"
                for i, c in enumerate(cells)
            )
            out.append(f'<tr class="{kind}">{tds}</tr>')
        out.append("</tbody></table></div>")
        if table.common_settings:
            common = ", ".join(f"<code>{e(str(k))}={e(str(v))}</code>" for k, v in table.common_settings.items())
            out.append(f'<p class="note">Settings with one value (in the runs that set them): {common}.</p>')
        for number, source in enumerate(table.footnotes, start=1):
            out.append(f'<p class="note">[{number}] {e(source)}</p>')
    if issues:
        out.append("<h2>Skipped records</h2><ul>")
        out += [f"<li><code>{e(str(issue))}</code></li>" for issue in issues[:200]]
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- plots
def _new_figure(panels: int, *, width: float = 3.9, height: float = 2.15):
    require("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # optional (`leaderboard` extra): plots only
    from matplotlib.figure import Figure  # optional (`leaderboard` extra): plots only

    ncols = 1 if panels <= 3 else 2
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(width * ncols + 1.0, height * nrows + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(panels)]
    return fig, axes


def _numeric_axis(h: Headline) -> bool:
    return (
        len(h.column_names) == 1
        and len(h.column_keys) >= 2
        and all(isinstance(k[0], (int, float)) and not isinstance(k[0], bool) for k in h.column_keys)
    )


def plot_headlines(headlines: Sequence[Headline], benchmarks: Sequence[Benchmark], plot_dir: Path) -> list[Path]:
    """One PNG per benchmark and headline metric, ``plot_dir/<benchmark>-<metric>.png``, one panel per
    headline table (at most 9): a line per estimator against a numeric column (log axes when the column
    spans a factor ≥ 10 or the metric is memory), otherwise horizontal bars (mean ± std) per estimator and
    column. Returns the written paths."""
    declared = _declared(benchmarks)
    written: list[Path] = []
    groups: dict[tuple[str, str], list[Headline]] = {}
    for h in headlines:
        groups.setdefault((h.benchmark, h.metric.name), []).append(h)
    for (name, metric_name), hs in groups.items():
        hs = [h for h in hs if any(st.n for per in h.values.values() for st in per.values())][:_MAX_PANELS]
        if not hs:
            continue
        bench = declared[name]
        metric = hs[0].metric
        fig, axes = _new_figure(len(hs))
        shown = _display_unit(metric.unit)
        memory_scale = _MEMORY_UNITS.get(metric.unit)
        unit_text = "MiB" if memory_scale else ("s" if metric.unit == "s" else shown)
        convert = (
            _mib_converter(memory_scale)
            if memory_scale
            else (lambda v: v * 100.0)
            if metric.unit == "fraction"
            else (lambda v: v)
        )  # noqa: E731
        style = {lb: i for i, lb in enumerate(sorted({lb for h in hs for lb in h.values}))}
        for ax, h in zip(axes, hs):
            if _numeric_axis(h):
                xs_all = [k[0] for k in h.column_keys]
                for lb in sorted(h.values):
                    points = sorted((k[0], st) for k, st in h.values[lb].items() if st.n)
                    if not points:
                        continue
                    i = style[lb]
                    ax.errorbar(
                        [p[0] for p in points],
                        [convert(p[1].mean) for p in points],
                        yerr=[0.0 if p[1].std is None else abs(convert(p[1].std)) for p in points],
                        marker=_MARKERS[i % len(_MARKERS)],
                        markersize=4,
                        capsize=2,
                        color=f"C{i % 10}",
                        linestyle=_LINES[(i // 10) % len(_LINES)] if lb in h.competing else ":",
                        label=lb,
                        alpha=0.85,
                    )
                if max(xs_all) / max(min(xs_all), 1e-300) >= 10 and min(xs_all) > 0:
                    ax.set_xscale("log")
                if memory_scale:
                    ax.set_yscale("log")
                from matplotlib.ticker import NullFormatter, ScalarFormatter  # optional (`leaderboard` extra)

                ax.set_xticks(xs_all)
                ax.xaxis.set_major_formatter(ScalarFormatter())
                ax.xaxis.set_minor_formatter(NullFormatter())
                ax.set_xlabel(_label(bench, h.column_names[0]))
                ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
            else:
                labels = [lb for lb in sorted(h.values, key=lambda lb: (lb not in h.competing, lb.lower()))]
                width = 0.8 / max(1, len(h.column_keys))
                for j, ck in enumerate(h.column_keys):
                    ys, means, errs, colors = [], [], [], []
                    for r, lb in enumerate(labels):
                        st = h.values[lb].get(ck)
                        if st is None or not st.n:
                            continue
                        ys.append(r + (j - (len(h.column_keys) - 1) / 2) * width)
                        means.append(convert(st.mean))
                        errs.append(0.0 if st.std is None else abs(convert(st.std)))
                        colors.append(f"C{j % 10}" if lb in h.competing else "#b0b0b0")
                    ax.barh(
                        ys,
                        means,
                        height=width,
                        xerr=errs,
                        color=colors,
                        capsize=2,
                        label=_describe(bench, h.column_names, ck) if len(h.column_keys) > 1 else None,
                    )
                positive = [convert(st.mean) for per in h.values.values() for st in per.values() if st.n]
                if positive and min(positive) > 0 and max(positive) / min(positive) >= 100:
                    ax.set_xscale("log")  # values over orders of magnitude (errors from 1e-7 to 1e2)
                ax.set_yticks(range(len(labels)), labels, fontsize=7)
                ax.invert_yaxis()
                ax.grid(True, axis="x", alpha=0.3)
                if len(h.column_keys) > 1:
                    ax.legend(fontsize=6.5, frameon=False)
            if _numeric_axis(h):  # the figure title names the metric; the axis its unit
                ax.set_ylabel(f"{unit_text or metric.label} {_ARROWS[metric.direction]}", fontsize=8)
            else:
                ax.set_xlabel(
                    f"{metric.label}{f' ({unit_text})' if unit_text else ''} {_ARROWS[metric.direction]}", fontsize=8
                )
            ax.set_title(h.where, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, which="major", alpha=0.3)
        fig.suptitle(f"{name}: {metric.label} {_ARROWS[metric.direction]} (grey / dotted: yard sticks)", fontsize=8.5)
        plot_dir.mkdir(parents=True, exist_ok=True)
        path = plot_dir / f"{name}-{re.sub(r'[^A-Za-z0-9_.]+', '_', metric_name)}.png"
        fig.savefig(path, dpi=100)
        written.append(path)
    return written


# ------------------------------------------------------------------------------------------ everything
def render_all(
    results_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    plots: bool = True,
    benchmarks: Sequence[Benchmark] | None = None,
    warn: bool = True,
) -> dict[str, Any]:
    """Reads ``results_dir`` and writes ``LEADERBOARD.md``, ``leaderboard.html`` and ``plots/*.png`` into
    ``out_dir`` (default: ``results_dir``). ``benchmarks``: the declarations (default:
    [`fg2u.benchmarks.discover`][fg2u.benchmarks.discover]).

    Returns:
      ``{"markdown": Path, "html": Path, "plots": [Path], "issues": [LoadIssue], "summaries": [...],
      "headlines": [Headline], "tables": [Table], "stale": [(GroupSummary, [Staleness])]}``.
    """
    results_dir = Path(results_dir)
    out_dir = Path(out_dir) if out_dir is not None else results_dir
    if benchmarks is None:
        benchmarks, plugin_issues = discover(with_issues=True)
    else:
        plugin_issues = []
    benchmarks = sorted(benchmarks, key=lambda b: (b.order, b.name))
    summaries, issues = aggregate(results_dir, warn=warn, benchmarks=benchmarks)
    views = render_views(
        load_results(results_dir, warn=False, benchmarks=benchmarks).records,
        benchmarks,
        (out_dir / "plots") if plots else None,
    )
    issues = [LoadIssue(p.entry_point, 0, p.message) for p in plugin_issues] + list(issues)
    headlines, unmatched = build_headlines(summaries, benchmarks)
    tables = build_tables(summaries, benchmarks)
    titles = {b.name: b.title for b in benchmarks}
    written = plot_headlines(headlines, benchmarks, out_dir / "plots") if plots else []
    figures = {b.name: [results_dir / f for f in b.figures if (results_dir / f).is_file()] for b in benchmarks}
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path = out_dir / "LEADERBOARD.md"
    label = os.path.relpath(results_dir, out_dir.parent) if out_dir != results_dir else results_dir.name
    stale = _stale_groups(summaries, results_dir)
    md_path.write_text(
        render_markdown(
            tables,
            issues,
            written,
            headlines=headlines,
            titles=titles,
            unmatched=unmatched,
            out_dir=out_dir,
            results_label=label,
            figures=figures,
            views=views,
        )
        + _stale_markdown(stale),
        encoding="utf-8",
    )
    html_path = out_dir / "leaderboard.html"
    html_path.write_text(
        render_html(tables, issues, written, headlines=headlines, titles=titles, figures=figures), encoding="utf-8"
    )
    return {
        "markdown": md_path,
        "html": html_path,
        "plots": written,
        "issues": issues,
        "summaries": summaries,
        "headlines": headlines,
        "tables": tables,
        "stale": stale,
    }


# --------------------------------------------------------------------------------------------- staleness
def _stale_groups(summaries: Sequence[GroupSummary], results_dir: Path) -> list[tuple[GroupSummary, list[Any]]]:
    """The groups with records older than the last change to the code they measure
    (`fg2u.leaderboard.staleness`); none outside a git checkout."""
    from fg2u.leaderboard.staleness import stale_groups  # noqa: PLC0415 (only render_all needs git)

    try:
        root = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=results_dir, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return stale_groups(summaries, root.stdout.strip()) if root.returncode == 0 else []


def _stale_markdown(stale: Sequence[tuple[GroupSummary, list[Any]]], *, listed: int = 8) -> str:
    """A "Stale records" section for LEADERBOARD.md ("" when nothing is stale): per benchmark, how many groups
    are stale, at which commits they ran, the last change, and the first ``listed`` groups."""
    if not stale:
        return ""
    lines = [
        "",
        "## Stale records",
        "",
        f"{len(stale)} group(s) hold records measured at a commit older than the last change to the code they "
        "measure (`git log -1 -- <sources>`: the benchmark's package and the core, see "
        "`fg2u.leaderboard.staleness`); their numbers may not describe the current code. Re-run them:",
        "",
    ]
    by_benchmark: dict[str, list[tuple[GroupSummary, list[Any]]]] = {}
    for summary, verdicts in stale:
        by_benchmark.setdefault(summary.key.benchmark, []).append((summary, verdicts))
    for benchmark, groups in by_benchmark.items():
        commits = sorted({(v.commit or "?")[:7] for _, verdicts in groups for v in verdicts})
        last = (groups[0][1][0].last_change or "?")[:7]
        lines.append(
            f"- **{_md_escape(benchmark)}**: {len(groups)} group(s), run at {', '.join(commits)}; "
            f"code last changed at {last}"
        )
        lines += [f"    - `{_md_escape(summary.key.label())}`" for summary, _ in groups[:listed]]
        if len(groups) > listed:
            lines.append(f"    - … and {len(groups) - listed} more")
    return "\n".join(lines) + "\n"
