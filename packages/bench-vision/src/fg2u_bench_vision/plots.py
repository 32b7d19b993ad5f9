"""Figures of the benchmark: a PNG grid of condensed images (one row per class, ``ipc`` columns), and the
gradient-quality figure of the probe (cosine to the exact meta-gradient against T and against memory)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["save_image_grid", "save_gradient_quality_figure", "GRADIENT_QUALITY_FIGURE"]

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
        if r.settings.get("measure") != "quality" or not str(r.config).startswith("probe-T"):
            continue
        steps = int(str(r.config)[len("probe-T") :])
        memory = r.metrics.get("memory_bytes")
        points[(r.estimator, steps)] = (r.metrics["cosine_mean"], r.metrics["cosine_std"], memory)
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
            # stack the labels of points that (nearly) coincide instead of printing them over each other
            near = sum(abs(np.log10(x / px)) < 0.15 and abs(y - py) < 0.04 for px, py in placed)
            placed.append((x, y))
            right.scatter([x], [y], color=colours[label], s=40)
            right.annotate(label, (x, y), textcoords="offset points", xytext=(4, 3 - 9 * near), fontsize=7)
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


def _save(fig, path: str | os.PathLike) -> Path:
    """Saves ``fig`` as a PNG at ``path`` (parent folders created), closes it, returns the path."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
