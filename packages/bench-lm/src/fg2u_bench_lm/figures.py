"""Figures of the CaMeLS benchmark: learned token weights as a heat map over the text of a few test
documents (the CaMeLS paper's signature figure), and the validation meta-objective during meta-training.

* :func:`plot_weight_heatmap` — each token of each document drawn as a box whose colour is its weight
  (normalised per figure to the largest weight); tokens of the answer spans (the synthetic streams'
  ``Document.answer_spans``, what the questions ask) are underlined in red.
* :func:`plot_meta_validation` — the records' anytime curves (validation meta-objective L(φ)) against the
  meta step and the seconds of the run, one line per record.
* :func:`plot_memory` — the ``memory`` records: peak memory of one meta-gradient against T per estimator.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from fg2u_bench_lm.data import Document

__all__ = ["plot_weight_heatmap", "plot_meta_validation", "plot_memory"]


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_weight_heatmap(
    tokenizer,
    docs: Sequence[Document],
    weight_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    path: str | os.PathLike,
    *,
    max_doc_tokens: int = 160,
    title: str = "learned token weights",
    chars_per_line: int = 110,
) -> Path:
    """PNG heat map of ``weight_fn(input_ids (1, L), attention_mask (1, L)) -> (1, L)`` over ``docs``.

    Colour = weight / (largest weight over all shown tokens); red underline = answer tokens.
    """
    from fg2u_bench_lm.tokenizer import encode_texts, span_token_mask

    plt = _matplotlib()
    import matplotlib
    import matplotlib.cm as cm

    rows: list[tuple[list[str], list[float], list[float]]] = []
    for d in docs:
        batch = encode_texts(tokenizer, [d.text], max_doc_tokens)
        with torch.no_grad():
            w = weight_fn(batch["input_ids"], batch["attention_mask"])[0].float()
        answer = (
            span_token_mask(tokenizer, [d], max_doc_tokens, scope="answer")[0]
            if d.answer_spans
            else torch.zeros_like(w)
        )
        pieces = [tokenizer.decode([int(t)]) for t in batch["input_ids"][0]]
        rows.append((pieces, w.tolist(), answer.tolist()))
    top = max(max(r[1]) for r in rows) or 1.0
    # lay out: each token occupies len(piece) character cells; wrap at chars_per_line
    lines_per_doc = []
    for pieces, _, _ in rows:
        n, col = 1, 0
        for p in pieces:
            if col + len(p) > chars_per_line:
                n, col = n + 1, 0
            col += max(1, len(p))
        lines_per_doc.append(n)
    total_lines = sum(lines_per_doc) + 2 * len(rows)
    fig_h = 0.26 * total_lines + 0.8
    fig, ax = plt.subplots(figsize=(0.085 * chars_per_line + 1.0, fig_h))
    ax.set_xlim(0, chars_per_line)
    ax.set_ylim(total_lines, 0)
    ax.axis("off")
    cmap = matplotlib.colormaps["Reds"]
    y = 0.0
    for k, (pieces, weights, answer) in enumerate(rows):
        ax.text(0, y + 0.7, f"document {k + 1} (max weight {max(weights):.2f})", fontsize=7, color="grey")
        y += 1.2
        col = 0
        for p, w, a in zip(pieces, weights, answer):
            width = max(1, len(p))
            if col + width > chars_per_line:
                y, col = y + 1, 0
            ax.add_patch(plt.Rectangle((col, y), width, 0.9, color=cmap(0.05 + 0.9 * w / top), linewidth=0))
            ax.text(col, y + 0.68, p.replace("\n", " "), fontsize=8, family="monospace")
            if a > 0:
                ax.plot([col, col + width], [y + 0.92, y + 0.92], color="#0044cc", linewidth=1.2)
            col += width
        y += 1.8
    sm = cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, top))
    fig.colorbar(sm, ax=ax, fraction=0.02, pad=0.01, label="token weight")
    ax.set_title(title + "  (blue underline: answer tokens)", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_meta_validation(
    records: Sequence[Any],
    path: str | os.PathLike,
    title: str = "validation meta-objective during meta-training",
) -> Path:
    """PNG of the records' anytime curves (``record.curve``: the validation meta-objective L(φ)) against the
    meta step (left) and the seconds of the run (right), one colour per estimator, one line per record."""
    plt = _matplotlib()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names: list[str] = []
    runs = {}  # the meta-training settings that tell an estimator's runs apart (T, outer lr), where they differ
    for r in records:
        runs.setdefault(_label(r), set()).add(_training(r))
    for r in records:
        if r.curve is None:
            continue
        label = _label(r)
        if len(runs[label]) > 1:
            label += " T = {}, lr {:g}".format(*_training(r))
        first = label not in names
        if first:
            names.append(label)
        colour = colours[names.index(label) % len(colours)]
        for ax, xs in zip(axes, (r.curve.step, r.curve.seconds)):
            ax.plot(xs, r.curve.value, color=colour, alpha=0.85, marker=".", label=label if first else None)
    axes[0].set_xlabel("meta step")
    axes[1].set_xlabel("seconds of the run (compilation included)")
    axes[0].set_ylabel("validation meta-objective L(φ)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, plt, path)


def _training(record: Any) -> tuple[Any, float]:
    c = record.config_settings
    return c.get("inner_steps"), float(c.get("outer_lr", float("nan")))


def _label(record: Any) -> str:
    """The estimator's name, with its spec when the spec has settings (``FG2U (fg2u:num_directions=8,...)``)."""
    spec = record.estimator_spec
    return f"{record.estimator} ({spec})" if ":" in spec else record.estimator


def plot_memory(records: Sequence[Any], path: str | os.PathLike, budget_bytes: int | None = None) -> Path:
    """PNG of the ``memory`` records: peak-RSS growth of one meta-gradient (MiB) against T, one line per
    estimator spec (the last record of each (spec, T)), with the budget as a dashed line."""
    plt = _matplotlib()
    fig, ax = plt.subplots(figsize=(6, 4))
    points: dict[str, dict[int, float]] = {}
    for r in records:
        if r.task == "memory" and r.memory is not None and r.status == "ok":
            points.setdefault(_label(r), {})[int(r.problem_settings["num_steps"])] = r.memory.bytes / 2**20
    for (label, by_t), marker in zip(points.items(), "osD^v<>"):
        ts = sorted(by_t)
        ax.plot(ts, [by_t[t] for t in ts], marker=marker, label=label)
    if budget_bytes:
        ax.axhline(budget_bytes / 2**20, color="red", linestyle="--", label=f"budget ({budget_bytes / 2**20:.0f} MiB)")
    ax.set_xlabel("unroll depth T (documents per meta-gradient)")
    ax.set_ylabel("peak RSS growth (MiB)")
    ax.set_title("CaMeLS: memory of one meta-gradient against T (fresh process each)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
