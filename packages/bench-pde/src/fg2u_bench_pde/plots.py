"""Error against solver calls and seconds, every method of a setting in one figure (issue 25).

``python -m fg2u_bench_pde.plots results/pde/cpu-baselines.jsonl`` (also written by every run): one PNG per
(setting, noise level, solver noise, initial scan) next to the records, :func:`figure_name`:
a column per task (equation, or K for the field), the top row the error against solver calls (log-log), the
bottom row against seconds (initial scan + loop, compilation excluded). Each seed is one thin line; yardsticks
(the noise floor, the MAP fit) are horizontal lines, and the field's target (within 10 % of the MAP fit's error)
a dashed one. White-box estimators are drawn against their forward plus derivative passes through the solver.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from fg2u.experiment import ResultRecord, read_records

__all__ = ["figure_name", "method_label", "save_cost_figures", "main"]

_YARDSTICKS = ("NoiseFloor", "MAPFit")


def _steps(record: ResultRecord) -> int | None:
    steps = record.config_settings.get("outer_steps")
    return steps.get(record.task) if isinstance(steps, dict) else None


def _labeller(group: Sequence[ResultRecord]) -> Callable[[ResultRecord], str]:
    """``method_label``, plus the meta steps where a method ran with several step counts in ``group``."""
    counts: dict[str, set] = {}
    for r in group:
        counts.setdefault(method_label(r), set()).add(_steps(r))

    def label(r: ResultRecord) -> str:
        base = method_label(r)
        return f"{base}, {_steps(r)} steps" if len(counts[base]) > 1 and _steps(r) is not None else base

    return label


def method_label(record: ResultRecord) -> str:
    """A short name of the method: the estimator and the settings that tell its variants apart."""
    s = record.estimator_settings
    if record.estimator in ("FG2U_ZO", "FG2U"):
        extra = [f"b={s.get('num_directions')}"]
        if s.get("distribution") not in (None, "rademacher"):
            extra.append(str(s.get("distribution")))
        if s.get("scheme") == "central":
            extra.append("central")
        return f"{record.estimator} {' '.join(extra)}"
    if record.estimator == "NelderMead" and s.get("initial_step") is not None:
        return f"NelderMead simplex {s['initial_step']:g}"
    return record.estimator


def figure_name(record: ResultRecord) -> str:
    """``<config>-<setting>-noise<L>[-solvernoise<s>][-scan<n>].png`` (runs with and without an initial scan
    start from different points: separate figures)."""
    p = record.problem_settings
    setting = str(p.get("setting", "paper"))
    prefix = record.config if record.config.endswith(f"-{setting}") else f"{record.config}-{setting}"
    name = f"{prefix}-noise{float(p.get('noise_level', 0.0)):g}"
    if float(p.get("solver_noise", 0.0) or 0.0) > 0:
        name += f"-solvernoise{float(p['solver_noise']):g}"
    scan = int(record.config_settings.get("init_scan", 0) or 0)
    return name + (f"-scan{scan}" if scan else "") + ".png"


def _column(record: ResultRecord) -> str:
    p = record.problem_settings
    return f"K = {p['unknowns']}" if p.get("setting") == "field" else record.task


def _x_values(record: ResultRecord, axis: str) -> list[float] | None:
    curve = record.curve
    if curve is None:
        return None
    if axis == "seconds":
        offset = float(record.metrics.get("scan_seconds", 0.0) or 0.0)
        return [offset + s - curve.seconds[0] for s in curve.seconds]
    calls = curve.cost.get("solver_calls")
    if calls is None:
        return None
    passes = curve.cost.get("derivative_passes")
    return list(calls) if passes is None else [a + b for a, b in zip(calls, passes)]


def save_cost_figures(records: Sequence[ResultRecord], out: str | Path, config: str | None = None) -> list[Path]:
    """Draws the figures of ``records`` (those of ``config`` when given) into ``out``; returns their paths."""
    import matplotlib  # noqa: PLC0415 (optional: only when drawing)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import LogLocator, NullFormatter  # noqa: PLC0415

    groups: dict[str, list[ResultRecord]] = {}
    for r in records:
        if r.status == "ok" and (config is None or r.config == config) and r.benchmark == "pde":
            if r.problem_settings.get("solver", "spectral") == "spectral":
                groups.setdefault(figure_name(r), []).append(r)
    paths = []
    for name, group in sorted(groups.items()):
        columns = sorted({_column(r) for r in group}, key=_sort_key)
        label_of = _labeller(group)
        labels = sorted({label_of(r) for r in group if r.estimator not in _YARDSTICKS})
        colours = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
        fig, axes = plt.subplots(2, len(columns), figsize=(4.2 * len(columns), 7.0), squeeze=False)
        metric = next((r.curve.metric for r in group if r.curve is not None), "error")
        for j, column in enumerate(columns):
            rows = [r for r in group if _column(r) == column]
            for i, axis in enumerate(("calls", "seconds")):
                ax = axes[i][j]
                _draw(ax, rows, axis, colours, label_of)
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # labels at 1, 2, 5 × 10^k
                ax.xaxis.set_minor_formatter(NullFormatter())
                ax.set_xlabel("solver calls (scan included)" if axis == "calls" else "seconds (scan + loop)")
                ax.set_ylabel(metric.replace("_", " "))
                ax.grid(True, which="both", alpha=0.3)
                if i == 0:
                    ax.set_title(column)
        handles = [plt.Line2D([], [], color=c, label=label) for label, c in colours.items()]
        handles += [plt.Line2D([], [], color="k", linestyle=":", label="yardstick (noise floor / MAP fit)")]
        fig.legend(handles=handles, loc="lower center", ncol=min(5, len(handles)), fontsize=8, frameon=False)
        first = group[0].problem_settings
        fig.suptitle(
            f"{group[0].config}: setting {first.get('setting')}, noise {first.get('noise_level')}"
            + (f", solver noise {first['solver_noise']}" if first.get("solver_noise") else "")
            + " — each line one seed",
            fontsize=10,
        )
        fig.tight_layout(rect=(0, 0.06, 1, 0.96))
        path = Path(out) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def _sort_key(column: str) -> Any:
    return (0, int(column.split("=")[1])) if column.startswith("K =") else (1, column)


def _draw(
    ax: Any, rows: Iterable[ResultRecord], axis: str, colours: dict[str, Any], label_of: Callable[[ResultRecord], str]
) -> None:
    for r in rows:
        if r.estimator in _YARDSTICKS:
            value = r.metrics.get("relative_field_error", r.metrics.get("relative_coefficient_error", math.nan))
            if math.isfinite(value) and value > 0:
                ax.axhline(value, color="k", linestyle=":", linewidth=0.8)
                if r.estimator == "MAPFit":
                    ax.axhline(1.1 * value, color="k", linestyle="--", linewidth=0.6)
            continue
        x = _x_values(r, axis)
        if x is None or r.curve is None:
            continue
        points = [(a, b) for a, b in zip(x, r.curve.value) if a > 0 and math.isfinite(b) and b > 0]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, color=colours[label_of(r)], linewidth=0.9, alpha=0.8)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fg2u_bench_pde.plots", description=__doc__.split("\n")[0])
    parser.add_argument("records", nargs="+", help="result record files (.jsonl)")
    parser.add_argument("--out", default=None, help="folder of the figures (default: next to each file)")
    args = parser.parse_args(argv)
    for file in args.records:
        path = Path(file)
        for figure in save_cost_figures(read_records(path), args.out or path.parent, path.stem):
            print(figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
