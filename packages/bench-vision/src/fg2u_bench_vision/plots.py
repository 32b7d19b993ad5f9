"""Figures of the benchmark: a PNG grid of condensed images (one row per class, ``ipc`` columns), the
gradient-quality figure of the probe (cosine to the exact meta-gradient against T and against memory), and the
accuracy-cost figure of condensation runs (test accuracy against a meta step's memory and seconds).

The accuracy-cost figure of several record files (e.g. the main job's and the variants'):

    python -m fg2u_bench_vision.plots results/vision/cpu.jsonl results/vision/cpu-vr.jsonl \\
        --dataset digits --ipc 1 --inner-steps 100 --out results/vision/accuracy-vs-cost.png
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "save_image_grid",
    "save_gradient_quality_figure",
    "save_accuracy_cost_figure",
    "run_label",
    "GRADIENT_QUALITY_FIGURE",
]

GRADIENT_QUALITY_FIGURE = "gradient-quality.png"
"""File name of the probe's figure, next to ``probe.jsonl`` (the leaderboard shows ``vision/<this>``)."""


def save_image_grid(
    images: np.ndarray,
    num_classes: int,
    ipc: int,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Saves ``images: (num_classes · ipc, H, W, C)`` in ``[0, 1]`` (class-major order) as a PNG grid.

    Classes are rows when ``ipc > 1``; with ``ipc == 1`` all classes go in one row. Returns the path.
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    if images.ndim != 4 or images.shape[0] != num_classes * ipc:
        raise ValueError(f"images must be ({num_classes * ipc}, H, W, C), got {images.shape}")
    rows, cols = (1, num_classes) if ipc == 1 else (num_classes, ipc)
    if num_classes > 20 and ipc == 1:
        cols = 10
        rows = int(np.ceil(num_classes / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.0, rows * 1.0 + (0.4 if title else 0)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, img in enumerate(images):
        r, c = divmod(i, cols) if ipc == 1 else divmod(i, ipc)
        ax = axes[r, c]
        if img.shape[-1] == 1:
            ax.imshow(img[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(img, interpolation="nearest")
        if (ipc == 1 or c == 0) and class_names is not None:
            ax.set_title(str(class_names[i // ipc]), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    return _save(fig, path)


def save_gradient_quality_figure(
    records: Sequence, path: str | os.PathLike, *, memory_at_steps: int = 100
) -> Path | None:
    """Two panels from the probe's records (``measure == "quality"``; the last record of each estimator and T):

    * left — cosine to the exact meta-gradient (mean ± std over the draws) against the unroll length T, one
      line per estimator label (log x);
    * right — the same cosine against the compiled temp memory of one estimate at ``T = memory_at_steps``
      (log x), one labelled point per estimator: what each MiB buys.

    Returns the path, or ``None`` when no quality record exists.
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    points: dict[tuple[str, int], tuple[float, float, float | None]] = {}
    titles = set()
    for r in records:
        if r.config_settings.get("measure") != "quality" or not str(r.config).startswith("probe-T"):
            continue
        steps = int(str(r.config)[len("probe-T") :])
        memory = r.memory.bytes if r.memory is not None else r.metrics.get("memory_bytes")
        points[(settings_label(r), steps)] = (r.metrics["cosine_mean"], r.metrics["cosine_std"], memory)
        titles.add(f"{r.dataset}, {r.task}")
    if not points:
        return None
    labels = sorted({label for label, _ in points}, key=lambda n: (n.split()[0], len(n), n))
    colours = {label: plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")(i) for i, label in enumerate(labels)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    placed: list[tuple[float, float]] = []
    for label in labels:
        series = sorted((t, *v) for (n, t), v in points.items() if n == label)
        ts, mean, std = ([row[i] for row in series] for i in range(3))
        left.errorbar(ts, mean, yerr=std, marker="o", capsize=3, label=label, color=colours[label])
        at = points.get((label, memory_at_steps))
        if at is not None and at[2]:
            x, y = at[2] / 2**20, at[0]
            right.scatter([x], [y], color=colours[label], s=40)
            _annotate(right, label, x, y, placed, y_near=0.04)
    left.set(xscale="log", xlabel="unroll length T", ylabel="cosine to the exact meta-gradient", ylim=(0, 1.05))
    left.set_title("gradient quality against T", fontsize=9)
    left.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    right.set(
        xscale="log", xlabel=f"compiled temp memory of one estimate at T = {memory_at_steps} (MiB)", ylim=(0, 1.05)
    )
    right.set_title(f"gradient quality against memory, T = {memory_at_steps}", fontsize=9)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle("; ".join(sorted(titles)) + " — fresh network and real batch per draw", fontsize=8)
    return _save(fig, path)


def _num_directions(settings: Any) -> int | None:
    """b of an estimator's settings (``estimator_settings`` of a record), looking into wrapped estimators."""
    if not isinstance(settings, dict):
        return None
    if "num_directions" in settings:
        return int(settings["num_directions"])
    for key in ("estimator", "second"):
        found = _num_directions(settings.get(key))
        if found is not None:
            return found
    return None


_LABEL_KEYS = {"num_directions": "b", "truncation": "K", "num_terms": "K", "chunk_size": "chunk"}


def settings_label(record: Any) -> str:
    """``"FG2U b=8"``, ``"TRGU K=3"``, ``"FG2U b=8 chunk=1"``: the estimator and the settings a probe varies."""
    settings = record.estimator_settings
    inner = settings.get("estimator") if isinstance(settings.get("estimator"), dict) else None
    parts = [
        f"{short}={value}"
        for key, short in _LABEL_KEYS.items()
        for value in [(inner or settings).get(key)]
        if value is not None and not (key == "num_terms" and record.estimator != "Neumann")
    ]
    return " ".join([record.estimator, *parts])


def run_label(record: Any) -> str:
    """``"FG2U b=64"`` for an estimator that draws directions (b from its settings), else its name."""
    b = _num_directions(record.estimator_settings)
    return record.estimator if b is None else f"{record.estimator} b={b}"


def save_accuracy_cost_figure(
    records: Sequence, path: str | os.PathLike, *, dataset: str, ipc: int, inner_steps: int | None = None
) -> Path | None:
    """Test accuracy of condensation runs against what one meta step costs, two panels:

    * left — against the meta step's XLA compiled temp memory (the record's ``memory``, MiB, log x);
    * right — against the seconds per meta step (``meta_step_time_s``, log x).

    One point per :func:`run_label` (mean ± sample std over seeds of the per-seed test accuracy; for a seed run
    more than once, its last record), from the records of ``dataset`` with ``ipc`` images per class (and
    ``inner_steps`` T when given). The data baselines (``RandomReal``, ``WholeDataset``) are horizontal lines.
    Records without a memory figure (written before it was measured) appear in the right panel only.
    Returns the path, or ``None`` when no condensation run matches.
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    runs: dict[str, dict[int, Any]] = {}
    lines: dict[str, dict[int, float]] = {}
    configs = set()
    for r in records:
        s = r.problem_settings
        if r.dataset != dataset or s.get("ipc") != ipc or "test_accuracy_mean" not in r.metrics:
            continue
        if inner_steps is not None and s.get("inner_steps") != inner_steps:
            continue
        if "meta_step_time_s" in r.metrics:
            runs.setdefault(run_label(r), {})[r.seed] = r
            configs.add(str(r.config))
        elif r.estimator in ("RandomReal", "WholeDataset"):
            lines.setdefault(r.estimator, {})[r.seed] = r.metrics["test_accuracy_mean"]
    if not runs:
        return None
    labels = sorted(runs, key=lambda n: (-np.mean([r.metrics["test_accuracy_mean"] for r in runs[n].values()]), n))
    colours = {label: plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")(i) for i, label in enumerate(labels)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    placed: dict[Any, list[tuple[float, float]]] = {left: [], right: []}
    for label in labels:
        by_seed = list(runs[label].values())
        acc = [r.metrics["test_accuracy_mean"] for r in by_seed]
        mean, std = float(np.mean(acc)), float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0  # sample std
        text = f"{label} ({len(acc)})"
        memory = [r.memory.bytes for r in by_seed if r.memory is not None and r.memory.measure == "xla_temp_bytes"]
        if memory:
            x = float(np.median(memory)) / 2**20
            left.errorbar([x], [mean], yerr=[std], fmt="o", capsize=3, color=colours[label])
            _annotate(left, text, x, mean, placed[left], y_near=2.5)
        seconds = float(np.median([r.metrics["meta_step_time_s"] for r in by_seed]))
        right.errorbar([seconds], [mean], yerr=[std], fmt="o", capsize=3, color=colours[label])
        _annotate(right, text, seconds, mean, placed[right], y_near=2.5)
    for name, style in (("WholeDataset", ":"), ("RandomReal", "--")):
        if name in lines:
            value = float(np.mean(list(lines[name].values())))
            for ax in (left, right):
                ax.axhline(value, color="grey", linestyle=style, linewidth=1)
            right.annotate(
                f"{name} {value:.1f}",
                (1.0, value),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 3),
                textcoords="offset points",
                ha="right",
                fontsize=7,
                color="grey",
            )
    left.set(xscale="log", xlabel="compiled temp memory of one meta step (MiB)", ylabel="test accuracy (%)")
    left.set_title("accuracy against memory", fontsize=9)
    right.set(xscale="log", xlabel="seconds per meta step (median over seeds; this machine)")
    right.set_title("accuracy against time", fontsize=9)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        _plain_log_ticks(ax)
    horizon = f", T = {inner_steps}" if inner_steps is not None else ""
    fig.suptitle(
        f"{dataset}, IPC {ipc}{horizon}: mean ± std over seeds (number of seeds in brackets); configs "
        + ", ".join(sorted(configs)),
        fontsize=8,
    )
    return _save(fig, path)


def _annotate(ax: Any, text: str, x: float, y: float, placed: list[tuple[float, float]], *, y_near: float) -> None:
    """Labels the point ``(x, y)`` (log x), one line lower for each earlier label of ``placed`` that starts less
    than 0.4 decades to its left (or 0.15 to its right) and lies within ``y_near`` in y, so that labels of nearby
    points stack instead of overprinting."""
    near = sum(-0.15 < np.log10(x / px) < 0.4 and abs(y - py) < y_near for px, py in placed)
    placed.append((x, y))
    ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 3 - 9 * near), fontsize=7)


def _plain_log_ticks(ax: Any) -> None:
    """Plain numbers at 1, 2 and 5 times the powers of ten of a log x axis (labels even when the data span
    less than a decade), no labels at the other ticks."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # noqa: PLC0415

    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(formatter)
    ax.xaxis.set_minor_formatter(NullFormatter())


def _save(fig, path: str | os.PathLike) -> Path:
    """Saves ``fig`` as a PNG at ``path`` (parent folders created), closes it, returns the path."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of :func:`save_accuracy_cost_figure` over one or more ``.jsonl`` record files."""
    p = argparse.ArgumentParser(
        prog="python -m fg2u_bench_vision.plots",
        description="Test accuracy against memory and seconds per meta step, from condensation records.",
    )
    p.add_argument("records", nargs="+", help="result files (.jsonl) written by python -m fg2u_bench_vision")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--ipc", type=int, default=1)
    p.add_argument("--inner-steps", type=int, default=None, help="only runs with this unroll length T")
    p.add_argument("--out", required=True, help="PNG to write")
    args = p.parse_args(argv)
    from fg2u.experiment.records import read_records  # noqa: PLC0415

    missing = [f for f in args.records if not Path(f).is_file()]
    if missing:
        p.error(f"no such record file: {', '.join(missing)}")
    records = [r for f in args.records for r in read_records(f)]
    path = save_accuracy_cost_figure(
        records, args.out, dataset=args.dataset, ipc=args.ipc, inner_steps=args.inner_steps
    )
    if path is None:
        print(f"no condensation run of {args.dataset} IPC {args.ipc} in {', '.join(args.records)}; nothing drawn")
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
