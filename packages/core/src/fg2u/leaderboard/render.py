"""Rendering aggregated results: ``LEADERBOARD.md``, a self-contained ``leaderboard.html`` and PNG plots.

* One table per benchmark (``core`` first, then ``vision``, ``pde``, ``lm``, then the others). Rows are
  our aggregated runs (``mean ± std`` over seeds, ``n`` seeds) and the paper's published numbers
  (:mod:`fg2u.leaderboard.references`, row marked ``paper [k]`` with the source as footnote ``k``).
* Columns: task, dataset, config, the problem settings that vary within the benchmark, estimator, the
  entries' other varying settings (one "settings" column; settings with a single value wherever they
  are set are listed under the table), device (only if it varies), n, then the metrics:
  higher-is-better first, then lower-is-better errors, memory, time; unknown directions last.
* The best entry of each comparison group (:func:`fg2u.leaderboard.aggregate.comparison_key`) and metric
  is in bold (Markdown) / highlighted (HTML); the direction per metric is
  :func:`fg2u.leaderboard.aggregate.metric_direction`. Reference rows and non-competing entries
  (:func:`fg2u.leaderboard.aggregate.competes`: no-gradient or data baselines) are never marked.
* Rows are sorted by task, data set, config, problem settings, then competing entries before baselines.
* Plots (need matplotlib, the ``leaderboard`` extra): ``plots/memory_vs_depth_<benchmark>.png`` — a
  memory metric against the unroll depth (``num_steps``, ``T`` …), one line per estimator, one panel per
  problem (task / dataset / other problem settings); ``plots/quality_<benchmark>.png`` — the main quality
  metric (accuracy-like if any, else an error) per estimator with ± std bars, one panel per comparison
  group. Benchmarks without such data get no plot.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import os
import re
import textwrap
from pathlib import Path
from typing import Any, Sequence

from fg2u.leaderboard.aggregate import (
    DEPTH_SETTINGS,
    PROBLEM_SETTINGS,
    GroupKey,
    GroupSummary,
    LoadIssue,
    MetricStats,
    aggregate,
    best_entries,
    comparison_key,
    competes,
    metric_direction,
    require,
)
from fg2u.leaderboard.references import REFERENCES, Reference, reference_in_column_unit, references_for

__all__ = [
    "Cell",
    "Table",
    "DEPTH_SETTINGS",
    "build_tables",
    "render_markdown",
    "render_html",
    "plot_memory_vs_depth",
    "plot_quality",
    "render_all",
    "format_stats",
]

BENCHMARK_ORDER = ("core", "vision", "pde", "lm")
_MAX_PANELS = 16
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
_LINES = ("-", "--", ":")


# ----------------------------------------------------------------------------------- table structure
@dataclasses.dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False


@dataclasses.dataclass
class Table:
    """A benchmark table, rendered by both the Markdown and the HTML writer."""

    benchmark: str
    columns: list[str]
    rows: list[tuple[str, list[Cell]]]  # (kind: "run" | "reference", cells)
    common_settings: dict[str, Any]
    footnotes: list[str]
    directions: dict[str, str | None]


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
        return (4 if name == "peak_memory_bytes" else 3, name)
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


def format_stats(name: str, stats: MetricStats, row_n: int | None = None) -> str:
    """``mean ± std`` (bytes in KiB/MiB/GiB), with ``(n=k)`` when the metric has fewer values than the
    row has seeds and ``(k non-finite)`` for diverged runs."""
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


def _settings_text(value: Any) -> str:
    if value is None:
        return "None"
    return str(value)


def _sort_value(value: Any) -> tuple:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _benchmark_sort(name: str) -> tuple:
    return (BENCHMARK_ORDER.index(name) if name in BENCHMARK_ORDER else len(BENCHMARK_ORDER), name)


def build_tables(
    summaries: Sequence[GroupSummary], references: Sequence[Reference] = REFERENCES
) -> list[Table]:
    """One :class:`Table` per benchmark found in ``summaries`` or ``references``."""
    best = best_entries(summaries)
    benchmarks = sorted({s.key.benchmark for s in summaries} | {r.benchmark for r in references}, key=_benchmark_sort)
    tables = []
    for benchmark in benchmarks:
        entries = [s for s in summaries if s.key.benchmark == benchmark]
        refs = references_for(benchmark, references)
        # settings: varying ones become columns, constant ones go under the table
        all_names: list[str] = []
        for s in entries:
            all_names += [n for n, _ in s.key.settings if n not in all_names]
        varying, common = [], {}
        for name in all_names:
            present = [s.key.settings_dict[name] for s in entries if name in s.key.settings_dict]
            if len({repr(v) for v in present}) > 1:
                varying.append(name)
            else:  # one value wherever it is set
                common[name] = present[0]
        # problem settings get their own columns; the entries' own settings share one "settings" column
        other = [n for n in varying if n not in PROBLEM_SETTINGS]
        varying = sorted((n for n in varying if n in PROBLEM_SETTINGS), key=PROBLEM_SETTINGS.index)
        for ref in refs:  # settings of the reference rows get a column too
            for name in ref.settings:
                if name not in varying:
                    varying.append(name)
                    common.pop(name, None)
        show_device = len({s.key.device for s in entries}) > 1
        metric_names: list[str] = []
        for s in entries:
            metric_names += [m for m in s.metrics if m not in metric_names]
        metric_names.sort(key=_metric_order)
        # where reference values go
        ref_columns: dict[int, str] = {}
        for i, ref in enumerate(refs):
            match = next((c for c in ref.columns if c in metric_names), None)
            if match is None:
                match = f"{ref.metric} (paper)"
            ref_columns[i] = match
        extra = [c for c in dict.fromkeys(ref_columns.values()) if c not in metric_names]
        metric_columns = metric_names + extra
        fixed = ["row", "task", "dataset", "config", *varying, "estimator"] + (["settings"] if other else [])
        fixed += (["device"] if show_device else []) + ["n"]
        columns = fixed + metric_columns
        rows: list[tuple[str, list[Cell]]] = []
        entries.sort(key=lambda s: (s.key.task, s.key.dataset, s.key.config, str(s.key.device),
                                    [_sort_value(s.key.settings_dict.get(n)) for n in varying],
                                    not competes(s.key), s.key.estimator, repr(s.key.settings)))
        for s in entries:
            settings = s.key.settings_dict
            cells = [Cell("ours"), Cell(s.key.task), Cell(s.key.dataset), Cell(s.key.config)]
            cells += [Cell(_settings_text(settings[n]) if n in settings else "—") for n in varying]
            cells.append(Cell(s.key.estimator))
            if other:
                cells.append(Cell(", ".join(f"{n}={_settings_text(settings[n])}" for n in other if n in settings)))
            if show_device:
                cells.append(Cell(str(s.key.device)))
            cells.append(Cell(str(s.n)))
            for name in metric_columns:
                stats = s.metrics.get(name)
                cells.append(Cell("" if stats is None else format_stats(name, stats, s.n), (s.key, name) in best))
            rows.append(("run", cells))
        footnotes: list[str] = []
        for i, ref in enumerate(refs):
            if ref.source not in footnotes:
                footnotes.append(ref.source)
            number = footnotes.index(ref.source) + 1
            column = ref_columns[i]
            values = [st.mean for s in entries for n, st in s.metrics.items() if n == column]
            hints = {n: v for s in entries if column in s.metrics for n, v in s.key.settings if n.endswith("_unit")}
            scale = reference_in_column_unit(column, values, hints) if column in metric_names else None
            leftover = {k: v for k, v in ref.settings.items() if k not in varying}
            task = ref.task + ("".join(f", {k}={v}" for k, v in leftover.items()))
            cells = [Cell(f"paper [{number}]"), Cell(task), Cell(ref.dataset), Cell("paper")]
            cells += [Cell(_settings_text(ref.settings[n]) if n in ref.settings else "") for n in varying]
            cells.append(Cell(ref.estimator))
            if other:
                cells.append(Cell(""))
            if show_device:
                cells.append(Cell(""))
            cells.append(Cell("—"))
            cells += [Cell(ref.text(scale) if name == column else "") for name in metric_columns]
            rows.append(("reference", cells))
        directions = {name: metric_direction(name) for name in metric_columns}
        tables.append(Table(benchmark, columns, rows, common, footnotes, directions))
    return tables


# ------------------------------------------------------------------------------------------- markdown
def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _direction_note(table: Table) -> str:
    arrows = {"higher": "↑", "lower": "↓"}
    parts = [f"{name} {arrows[d]}" for name, d in table.directions.items() if d in arrows]
    return ", ".join(parts)


def render_markdown(
    tables: Sequence[Table],
    issues: Sequence[LoadIssue] = (),
    plots: Sequence[Path] = (),
    *,
    out_dir: Path | None = None,
    results_label: str = "results",
) -> str:
    """The text of ``LEADERBOARD.md``; plot links are relative to ``out_dir``."""
    lines = [
        "# fg2u leaderboard",
        "",
        f"Generated by `python -m fg2u.leaderboard render` from `{results_label}/**/*.jsonl`. "
        "Cells are mean ± sample std (ddof = 1) over seeds; `n` = number of seeds. **Bold**: best entry "
        "of its comparison group (same task, data set, config, device and problem settings; the unroll depth "
        "counts for memory and time only) for that metric "
        "(↑ higher is better, ↓ lower is better). Rows `paper [k]` are the numbers published in the (FG)²U "
        "paper (source in footnote k); they are a yard stick from the authors' full-scale runs and never "
        "marked best.",
        "",
    ]
    for table in tables:
        lines += [f"## {table.benchmark}", ""]
        runs = sum(1 for kind, _ in table.rows if kind == "run")
        if not runs:
            lines += ["_No runs recorded yet; only the paper's numbers are shown._", ""]
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
    if plots:
        lines += ["## Plots", ""]
        for plot in plots:
            link = os.path.relpath(plot, out_dir) if out_dir is not None else str(plot)
            lines += [f"![{plot.stem}]({Path(link).as_posix()})", ""]
    if issues:
        lines += ["## Skipped records", "", f"{len(issues)} line(s) were not used:", ""]
        lines += [f"- `{_md_escape(str(issue))}`" for issue in issues[:50]]
        if len(issues) > 50:
            lines.append(f"- … and {len(issues) - 50} more")
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- html
_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto;
       max-width: 1400px; padding: 0 1rem; color: #1d1d1f; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.6rem 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.25rem 0.5rem; text-align: left; white-space: nowrap; }
th { background: #f0f3f7; }
tr.reference td { background: #faf8f0; color: #555; font-style: italic; }
td.best { background: #dff3e0; font-weight: 700; }
.note { color: #555; font-size: 0.85rem; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5rem 0; }
code { background: #f4f4f4; padding: 0 0.2rem; }
"""


def render_html(
    tables: Sequence[Table], issues: Sequence[LoadIssue] = (), plots: Sequence[Path] = ()
) -> str:
    """The text of ``leaderboard.html``: inline CSS, plots embedded as base64 PNG, no external files."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>fg2u leaderboard</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>fg2u leaderboard</h1>",
        '<p class="note">Cells: mean ± sample std (ddof = 1) over seeds; n = seeds. Highlighted: best '
        "entry of its comparison group (same task, data set, config, device and problem settings; the "
        "unroll depth counts for memory and time only) for that metric (↑ higher is better, ↓ lower is better). Shaded italic rows: numbers published in "
        "the (FG)²U paper, never marked best.</p>",
    ]
    for table in tables:
        out.append(f'<h2 id="{e(table.benchmark)}">{e(table.benchmark)}</h2>')
        note = _direction_note(table)
        if note:
            out.append(f'<p class="note">Direction: {e(note)}.</p>')
        out.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in table.columns) + "</tr></thead><tbody>")
        for kind, cells in table.rows:
            tds = "".join(f'<td class="best">{e(c.text)}</td>' if c.best and c.text else f"<td>{e(c.text)}</td>" for c in cells)
            out.append(f'<tr class="{kind}">{tds}</tr>')
        out.append("</tbody></table>")
        if table.common_settings:
            common = ", ".join(f"<code>{e(str(k))}={e(str(v))}</code>" for k, v in table.common_settings.items())
            out.append(f'<p class="note">Settings with one value (in the runs that set them): {common}.</p>')
        for number, source in enumerate(table.footnotes, start=1):
            out.append(f'<p class="note">[{number}] {e(source)}</p>')
    if plots:
        out.append("<h2>Plots</h2>")
        for plot in plots:
            data = base64.b64encode(Path(plot).read_bytes()).decode("ascii")
            out.append(f'<figure><img alt="{e(plot.stem)}" src="data:image/png;base64,{data}">'
                       f"<figcaption class=\"note\">{e(plot.stem)}</figcaption></figure>")
    if issues:
        out.append("<h2>Skipped records</h2><ul>")
        out += [f"<li><code>{e(str(issue))}</code></li>" for issue in issues[:200]]
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- plots
def _new_figure(panels: int):
    require("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = min(3, panels)
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(6.4 * ncols, 4.0 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(panels)]
    return fig, axes


def _panel_title(key: GroupKey, skip: Sequence[str] = ()) -> str:
    settings = key.settings_dict
    problem = [f"{n}={settings[n]}" for n in PROBLEM_SETTINGS if n in settings and n not in skip]
    return textwrap.fill(" · ".join([key.task, key.dataset, key.config, *problem]), 70)


def _labels(keys: Sequence[GroupKey], *, per_depth: bool = True) -> dict[GroupKey, str]:
    """Estimator names, plus the settings that tell apart entries of one estimator (at one depth when
    ``per_depth``, the x axis of a memory plot; otherwise the depth can be one of those settings)."""
    by_slot: dict[tuple, list[GroupKey]] = {}
    for key in keys:
        depth = _depth(key) if per_depth else None
        by_slot.setdefault((key.estimator, None if depth is None else depth[1]), []).append(key)
    extra: dict[str, set[str]] = {}
    for (estimator, _), slot in by_slot.items():
        if len(slot) > 1:
            dicts = [k.settings_dict for k in slot]
            names = {n for d in dicts for n in d if not (per_depth and n in DEPTH_SETTINGS)}
            extra.setdefault(estimator, set()).update(
                n for n in names if len({repr(d.get(n, "<absent>")) for d in dicts}) > 1)
    labels = {}
    for key in keys:
        settings = key.settings_dict
        shown = [f"{n}={settings[n]}" for n in sorted(extra.get(key.estimator, ())) if n in settings]
        labels[key] = key.estimator + (f" ({', '.join(shown)})" if shown else "")
    return labels


def _memory_metric(summaries: Sequence[GroupSummary]) -> str | None:
    names: list[str] = []
    for s in summaries:
        names += [m for m in s.metrics if _is_memory(m) and m not in names]
    for test in (lambda m: "compiled" in m and "temp" in m, lambda m: "compiled" in m,
                 lambda m: m == "peak_memory_bytes", lambda m: True):
        for name in names:
            if test(name):
                return name
    return None


def _depth(key: GroupKey) -> tuple[str, float] | None:
    settings = key.settings_dict
    for name in DEPTH_SETTINGS:
        value = settings.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return name, float(value)
    return None


def plot_memory_vs_depth(summaries: Sequence[GroupSummary], benchmark: str, path: Path) -> Path | None:
    """Memory against unroll depth, one line per estimator, one panel per problem; None if no data.

    The memory metric is the first of: a ``compiled…temp…`` metric, another ``compiled`` metric,
    ``peak_memory_bytes``, any memory metric. A panel is drawn when some line has ≥ 2 depths.
    """
    entries = [s for s in summaries if s.key.benchmark == benchmark and _depth(s.key) is not None]
    metric = _memory_metric(entries)
    if metric is None:
        return None
    entries = [s for s in entries if metric in s.metrics and s.metrics[metric].n > 0]
    per_unit = _bytes_per_unit(metric)
    depth_names = {_depth(s.key)[0] for s in entries}
    panels: dict[tuple, dict[str, list[tuple[float, MetricStats]]]] = {}
    titles: dict[tuple, str] = {}
    members: dict[tuple, list[GroupSummary]] = {}
    for s in entries:
        name, _ = _depth(s.key)
        ck = comparison_key(s.key)
        panel = ck[:5] + (tuple(p for p in ck[5] if p[0] != name), str(s.key.settings_dict.get("memory_measure")))
        titles[panel] = _panel_title(s.key, skip=[name])
        members.setdefault(panel, []).append(s)
    for panel, group in members.items():
        labels = _labels([s.key for s in group])
        for s in group:
            panels.setdefault(panel, {}).setdefault(labels[s.key], []).append((_depth(s.key)[1], s.metrics[metric]))
    panels = {p: lines for p, lines in panels.items() if any(len(pts) >= 2 for pts in lines.values())}
    if not panels:
        return None
    chosen = sorted(panels)[:_MAX_PANELS]
    fig, axes = _new_figure(len(chosen))
    style = {label: i for i, label in enumerate(sorted({lb for p in chosen for lb in panels[p]}))}
    colors = [f"C{i}" for i in range(10)]
    for ax, panel in zip(axes, chosen):
        for label, points in sorted(panels[panel].items()):
            i = style[label]
            points.sort(key=lambda p: p[0])
            xs = [p[0] for p in points]
            ys = [p[1].mean * per_unit / 2**20 for p in points]
            errs = [0.0 if p[1].std is None else p[1].std * per_unit / 2**20 for p in points]
            ax.errorbar(xs, ys, yerr=errs, marker=_MARKERS[i % len(_MARKERS)], markersize=5, capsize=2,
                        color=colors[i % len(colors)], linestyle=_LINES[(i // len(colors)) % len(_LINES)],
                        label=label, alpha=0.85)
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        ax.set_xscale("log")
        ax.set_yscale("log")
        depths = sorted({p[0] for pts in panels[panel].values() for p in pts})
        ax.set_xticks(depths)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("unroll depth " + "/".join(sorted(depth_names)))
        ax.set_ylabel(f"{metric} (MiB)")
        ax.set_title(titles[panel], fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(f"{benchmark}: memory vs unroll depth")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _quality_metric(summaries: Sequence[GroupSummary]) -> str | None:
    names: list[str] = []
    for s in summaries:
        names += [m for m in s.metrics if m not in names]
    quality = [m for m in names if not _is_memory(m) and not _is_time(m)]
    higher = [m for m in quality if metric_direction(m) == "higher"]
    for m in higher:
        if _words(m) & {"accuracy", "acc", "f1"}:
            return m
    if higher:
        return higher[0]
    lower = [m for m in quality if metric_direction(m) == "lower"]
    for m in lower:
        if _words(m) & {"error", "err"}:
            return m
    return lower[0] if lower else None


def plot_quality(summaries: Sequence[GroupSummary], benchmark: str, path: Path) -> Path | None:
    """Main quality metric (accuracy-like, else an error) per estimator, mean ± std bars, one panel per
    comparison group; None if the benchmark has no such metric."""
    entries = [s for s in summaries if s.key.benchmark == benchmark]
    metric = _quality_metric(entries)
    if metric is None:
        return None
    entries = [s for s in entries if metric in s.metrics and s.metrics[metric].n > 0]
    if not entries:
        return None
    panels: dict[tuple, list[GroupSummary]] = {}
    for s in entries:
        panels.setdefault(comparison_key(s.key, metric), []).append(s)
    chosen = sorted(panels, key=repr)[:_MAX_PANELS]
    fig, axes = _new_figure(len(chosen))
    best = best_entries(entries)
    for ax, panel in zip(axes, chosen):
        rows = sorted(panels[panel], key=lambda s: (not competes(s.key), s.key.estimator))
        names = _labels([s.key for s in rows], per_depth=False)
        labels = [names[s.key] for s in rows]
        means = [s.metrics[metric].mean for s in rows]
        errs = [0.0 if s.metrics[metric].std is None else s.metrics[metric].std for s in rows]
        colors = ["#2e7d32" if (s.key, metric) in best else "#5b7fa6" if competes(s.key) else "#b0b0b0" for s in rows]
        ax.barh(range(len(rows)), means, xerr=errs, color=colors, capsize=3)
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.invert_yaxis()
        arrow = {"higher": "↑", "lower": "↓"}.get(metric_direction(metric) or "", "")
        ax.set_xlabel(f"{metric} {arrow}")
        ax.set_title(_panel_title(rows[0].key, skip=DEPTH_SETTINGS), fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(f"{benchmark}: {metric}\n(green: best; grey: baselines, not competing)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# ------------------------------------------------------------------------------------------ everything
def render_all(
    results_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    plots: bool = True,
    references: Sequence[Reference] = REFERENCES,
    warn: bool = True,
) -> dict[str, Any]:
    """Reads ``results_dir`` and writes ``LEADERBOARD.md``, ``leaderboard.html`` and ``plots/*.png``
    into ``out_dir`` (default: ``results_dir``).

    Returns:
      ``{"markdown": Path, "html": Path, "plots": [Path], "issues": [LoadIssue], "summaries": [...]}``.
    """
    results_dir = Path(results_dir)
    out_dir = Path(out_dir) if out_dir is not None else results_dir
    summaries, issues = aggregate(results_dir, warn=warn)
    tables = build_tables(summaries, references)
    written: list[Path] = []
    if plots:
        plot_dir = out_dir / "plots"
        for benchmark in sorted({s.key.benchmark for s in summaries}, key=_benchmark_sort):
            for maker, stem in ((plot_memory_vs_depth, "memory_vs_depth"), (plot_quality, "quality")):
                path = maker(summaries, benchmark, plot_dir / f"{stem}_{benchmark}.png")
                if path is not None:
                    written.append(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path = out_dir / "LEADERBOARD.md"
    label = os.path.relpath(results_dir, out_dir.parent) if out_dir != results_dir else results_dir.name
    md_path.write_text(render_markdown(tables, issues, written, out_dir=out_dir, results_label=label), encoding="utf-8")
    html_path = out_dir / "leaderboard.html"
    html_path.write_text(render_html(tables, issues, written), encoding="utf-8")
    return {"markdown": md_path, "html": html_path, "plots": written, "issues": issues, "summaries": summaries}
