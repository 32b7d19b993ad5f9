"""A PNG grid of condensed images: one row per class, ``ipc`` columns."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["save_image_grid"]


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
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
