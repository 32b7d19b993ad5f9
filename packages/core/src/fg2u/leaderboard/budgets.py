"""Equal-budget views of a benchmark's runs: the held-out metric at equal wall-clock (from the records' anytime
curves), the best method under stated memory budgets, and a figure of the curves.

For one *pool* of a quality metric (the benchmark's first headline metric that is not a memory or time) — runs of one benchmark, task, data set, config and problem settings (what competes for "best",
`fg2u.leaderboard.aggregate.comparison_key`):

* **equal time** — every method's curve value at wall-clock budgets ``t`` (the curve's last point at or before
  ``t``: what the method had reached by then; ``—`` before its first point), mean over seeds; the budgets are the
  finishing times (median over seeds) of the fastest, the median and the slowest method. The curve's metric is
  the benchmark's cheap held-out metric along training (e.g. one evaluation network), not the final headline
  evaluation.
* **memory budgets** — the competing method with the best headline mean whose memory (the record's comparable
  measure, median over seeds) fits: at most 2× the forward unroll (when the records carry it in
  ``details["forward_unroll_bytes"]``), at most 25 % and 50 % of RGU's, unlimited.

Yard sticks (data baselines, bounds) are listed for reference, never chosen.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fg2u.benchmarks import Benchmark
from fg2u.experiment.records import MEASURES, ResultRecord
from fg2u.experiment.runner import GRADIENT_CHECK_TASK_PREFIX
from fg2u.leaderboard.aggregate import LoadedRecord, comparison_key, competes, group_key

_COST_UNITS = ("bytes", "KiB", "MiB", "GiB", "s")  # a memory or time metric is a cost, not what a budget buys

__all__ = ["Pool", "pools", "value_at", "equal_time_table", "memory_budget_table", "plot_curves", "render_views"]


@dataclasses.dataclass
class Pool:
    """The ok runs of one comparison group, by method label (estimator and its distinguishing settings)."""

    benchmark: Benchmark
    key: tuple
    metric: str
    runs: dict[str, list[ResultRecord]]
    yardsticks: set[str]

    @property
    def short_title(self) -> str:
        benchmark, task, dataset, config, _, _ = self.key
        return f"{benchmark} · {task} · {dataset} · config {config}"

    @property
    def title(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.key[5])
        return self.short_title + (f" ({settings})" if settings else "")


def _label(record: ResultRecord, varying: Sequence[str]) -> str:
    settings = record.estimator_settings
    shown = [f"{k}={settings[k]}" for k in varying if k in settings]
    return " ".join([record.estimator, *shown])


def pools(records: Iterable[LoadedRecord | ResultRecord], benchmarks: Sequence[Benchmark]) -> list[Pool]:
    """The comparison pools of every benchmark's first headline metric, with ok runs only; methods labelled by
    name and the estimator settings that tell runs of one name apart (``FG2U num_directions=64``)."""
    declared = {b.name: b for b in benchmarks}
    by_pool: dict[tuple, list[ResultRecord]] = {}
    for item in records:
        record = item.record if isinstance(item, LoadedRecord) else item
        bench = declared.get(record.benchmark)
        if bench is None or record.status != "ok" or record.task.startswith(GRADIENT_CHECK_TASK_PREFIX):
            continue
        headline = next(
            (m for m in bench.metrics if m.headline and m.applies_to(record.task) and m.unit not in _COST_UNITS),
            None,
        )
        if headline is None or headline.name not in record.metrics:
            continue
        by_pool.setdefault((comparison_key(group_key(record, include_device=True)), headline.name), []).append(record)
    out = []
    for (key, metric), records_ in sorted(by_pool.items(), key=lambda kv: repr(kv[0])):
        bench = declared[key[0]]
        names: dict[str, set[str]] = {}
        for r in records_:
            for k, v in r.estimator_settings.items():
                names.setdefault(f"{r.estimator}.{k}", set()).add(repr(v))
        latest: dict[str, dict[int, ResultRecord]] = {}  # a seed run again counts once: its latest record
        for r in records_:
            varying = [k.split(".", 1)[1] for k, v in names.items() if k.startswith(f"{r.estimator}.") and len(v) > 1]
            by_seed = latest.setdefault(_label(r, sorted(varying)), {})
            if r.seed not in by_seed or by_seed[r.seed].time <= r.time:
                by_seed[r.seed] = r
        runs = {label: [by_seed[s] for s in sorted(by_seed)] for label, by_seed in latest.items()}
        yard = {
            label
            for label, rs in runs.items()
            if not competes(group_key(rs[0], include_device=False), {bench.name: bench.yardsticks})
        }
        out.append(Pool(bench, key, metric, runs, yard))
    return out


def value_at(record: ResultRecord, seconds: float) -> float | None:
    """The record's curve value at wall-clock ``seconds``: its last point at or before it; None before its first
    point or when it has no curve."""
    curve = record.curve
    if curve is None or not curve.seconds or seconds < curve.seconds[0]:
        return None
    index = max(i for i, s in enumerate(curve.seconds) if s <= seconds)
    value = curve.value[index]
    return value if math.isfinite(value) else None


def _finish(records: Sequence[ResultRecord]) -> float | None:
    ends = [r.curve.seconds[-1] for r in records if r.curve is not None and r.curve.seconds]
    return statistics.median(ends) if ends else None


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.4g}{unit}"


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value < 100 else f"{value / 60:.3g} min"


def equal_time_table(pool: Pool) -> list[str] | None:
    """Markdown lines of the equal-time view, or None when fewer than two competing methods have curves."""
    timed = {
        label: [r for r in rs if r.curve is not None and r.curve.seconds]
        for label, rs in pool.runs.items()
        if label not in pool.yardsticks
    }
    timed = {label: rs for label, rs in timed.items() if rs}
    if len(timed) < 2:
        return None
    ends = sorted(t for t in (_finish(rs) for rs in timed.values()) if t is not None)
    budgets = sorted({ends[0], statistics.median(ends), ends[-1]})
    metric = next(r.curve.metric for rs in timed.values() for r in rs if r.curve is not None)
    lines = [
        f"**{pool.title}** — {metric} (the curve's held-out metric, mean over seeds) at equal wall-clock; "
        f"budgets: the fastest, the median and the slowest method's finishing time",
        "",
        "| method | seeds | " + " | ".join(f"≤ {_seconds(b)}" for b in budgets) + " | finished at |",
        "|:--|--:|" + "--:|" * (len(budgets) + 1),
    ]
    rows = []
    for label, rs in timed.items():
        cells = []
        for b in budgets:
            values = [v for v in (value_at(r, b) for r in rs) if v is not None]
            cells.append(statistics.fmean(values) if len(values) == len(rs) else None)
        rows.append((label, len(rs), cells, _finish(rs)))
    pick = max if _direction(pool) == "higher" else min
    best: list[float | None] = []
    for i in range(len(budgets)):
        column = [value for _, _, c, _ in rows if (value := c[i]) is not None]
        best.append(pick(column) if column else None)
    for label, n, cells, end in sorted(rows, key=lambda r: r[0].lower()):
        shown = [f"**{_fmt(c)}**" if c is not None and c == best[i] else _fmt(c) for i, c in enumerate(cells)]
        lines.append(f"| {label} | {n} | " + " | ".join(shown) + f" | {_seconds(end) if end else '—'} |")
    return lines + [""]


def _direction(pool: Pool) -> str:
    metric = pool.benchmark.metric(pool.metric)
    return metric.direction if metric is not None else "higher"


def _memory(records: Sequence[ResultRecord]) -> tuple[float, str] | None:
    """The median memory of ``records`` in their one comparable measure (a whole process's peak RSS is left out),
    or None when they have none or several."""
    comparable = [r.memory for r in records if r.memory is not None and MEASURES[r.memory.measure][1]]
    measures = {m.measure for m in comparable}
    if len(measures) != 1:
        return None
    return statistics.median(m.bytes for m in comparable), measures.pop()


def _mib(value: float) -> str:
    return f"{value / 2**20:.3g} MiB"


def memory_budget_table(pool: Pool) -> list[str] | None:
    """Markdown lines of the memory-budget view, or None without RGU's memory in the pool."""
    memory: dict[str, tuple[float, str]] = {}
    for label, rs in pool.runs.items():
        measured = _memory(rs) if label not in pool.yardsticks else None
        if measured is not None:
            memory[label] = measured
    rgu = memory.get("RGU")
    if rgu is None or len(memory) < 2:
        return None
    headline = {
        label: statistics.fmean(
            r.metrics[pool.metric] for r in pool.runs[label] if math.isfinite(r.metrics[pool.metric])
        )
        for label in memory
    }
    forward = [
        r.details["forward_unroll_bytes"]
        for rs in pool.runs.values()
        for r in rs
        if "forward_unroll_bytes" in r.details
    ]
    budgets: list[tuple[str, float]] = []
    if forward:
        budgets.append(("≤ 2× the forward unroll", 2 * statistics.median(forward)))
    budgets += [("≤ 25 % of RGU", 0.25 * rgu[0]), ("≤ 50 % of RGU", 0.5 * rgu[0]), ("unlimited", math.inf)]
    higher = _direction(pool) == "higher"
    lines = [
        f"**{pool.title}** — the best {pool.metric} (mean over seeds) whose memory fits "
        f"({rgu[1]}, median over seeds; RGU: {_mib(rgu[0])})",
        "",
        "| memory budget | best method | " + pool.metric + " | its memory | also fits |",
        "|:--|:--|--:|--:|:--|",
    ]
    for name, limit in budgets:
        fits = [label for label, (m, _) in memory.items() if m <= limit]
        if not fits:
            lines.append(f"| {name} ({_mib(limit)}) | none fits | — | — | |")
            continue
        best = max(fits, key=lambda lb: headline[lb] if higher else -headline[lb])
        others = ", ".join(sorted(lb for lb in fits if lb != best))
        limit_text = "" if math.isinf(limit) else f" ({_mib(limit)})"
        lines.append(f"| {name}{limit_text} | {best} | {_fmt(headline[best])} | {_mib(memory[best][0])} | {others} |")
    return lines + [""]


def plot_curves(pool: Pool, path: Path) -> Path | None:
    """The pool's curves (held-out metric against seconds, mean over seeds per evaluation) with the yard sticks'
    final values as horizontal lines; None when no run has a curve."""
    with_curves = {label: [r for r in rs if r.curve is not None] for label, rs in pool.runs.items()}
    with_curves = {k: v for k, v in with_curves.items() if v}
    if not with_curves:
        return None
    import matplotlib  # noqa: PLC0415 (optional: the `leaderboard` extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 (optional: the `leaderboard` extra)

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for label, rs in sorted(with_curves.items()):
        n = min(len(r.curve.step) for r in rs if r.curve is not None)
        xs = [statistics.fmean(r.curve.seconds[i] for r in rs if r.curve is not None) for i in range(n)]
        ys = [statistics.fmean(r.curve.value[i] for r in rs if r.curve is not None) for i in range(n)]
        ax.plot(xs, ys, marker="o", markersize=3, label=f"{label} ({len(rs)})")
    for label in sorted(pool.yardsticks - set(with_curves)):
        values = [r.metrics[pool.metric] for r in pool.runs[label] if math.isfinite(r.metrics[pool.metric])]
        if values:
            ax.axhline(statistics.fmean(values), color="grey", linestyle="--", linewidth=1)
            ax.annotate(
                label,
                (1.0, statistics.fmean(values)),
                xycoords=("axes fraction", "data"),
                ha="right",
                va="bottom",
                fontsize=7,
                color="grey",
            )
    metric = next(r.curve.metric for rs in with_curves.values() for r in rs if r.curve is not None)
    ax.set(xscale="log", xlabel="wall-clock seconds (compilation included; evaluations excluded)", ylabel=metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(pool.short_title + " — mean over seeds (number of seeds in brackets)", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def render_views(
    records: Iterable[LoadedRecord | ResultRecord], benchmarks: Sequence[Benchmark], plot_dir: Path | None = None
) -> Mapping[str, list[Any]]:
    """Per benchmark name: markdown lines of its equal-time and memory-budget views and the paths of its curve
    figures (written into ``plot_dir`` when given)."""
    out: dict[str, list[Any]] = {}
    for i, pool in enumerate(pools(records, benchmarks)):
        lines: list[Any] = []
        for view in (equal_time_table(pool), memory_budget_table(pool)):
            if view is not None:
                lines += view
        if plot_dir is not None and lines:  # a figure only beside a view that shows it
            _, task, _, config, _, _ = pool.key
            figure = plot_curves(pool, plot_dir / f"{pool.benchmark.name}-curves-{config}-{task}-{i}.png")
            if figure is not None:
                lines.append(figure)
        if lines:
            out.setdefault(pool.benchmark.name, []).extend(lines)
    return out
