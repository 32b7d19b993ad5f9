"""The peers benchmark's bi-level problem, written once per framework from the same seeded data.

Per-parameter weight decay of a tanh MLP ``d_in → hidden → 10`` (the meta-parameters φ: one decay
coefficient per weight and bias, so ``N = d_in·h + h + 10·h + 10``; ``small``: 64 → 128 → 10,
N = 9,610; ``large``: 784 → 1250 → 10, N = 993,760). Inner loop: T steps of SGD (learning rate η) on
minibatches ``(x_t, y_t)`` of B examples,

    θ_{t+1} = θ_t − η ∇_θ [ CE(MLP_θ(x_t), y_t) + ½ Σ_k φ_k θ_k² ],

from a fixed seeded θ_0 (independent of φ); outer loss ``F = CE(MLP_{θ_T}(x_val), y_val)``. Labels come
from a random teacher MLP, so the task is learnable. All data are float32 NumPy arrays drawn from
``numpy.random.default_rng(seed)`` and converted to each framework, so every implementation sees the same
numbers; the weight layout is ``w1 (d_in, h), b1 (h,), w2 (h, 10), b2 (10,)`` and the hidden layer is
``tanh(x @ w1 + b1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZES = {"small": (64, 128), "large": (784, 1250)}
NUM_CLASSES = 10
BATCH = 32
VALIDATION = 256
LR = 0.1
DECAY0 = 1e-3
NAMES = ("w1", "b1", "w2", "b2")


@dataclass(frozen=True)
class PeerData:
    """Seeded float32 data of one configuration (NumPy; every framework converts these)."""

    x: np.ndarray  # (T, B, d_in)
    y: np.ndarray  # (T, B) int64
    x_val: np.ndarray  # (VALIDATION, d_in)
    y_val: np.ndarray  # (VALIDATION,) int64
    params0: dict  # name -> array, θ_0
    phi0: dict  # name -> array, φ_0 (DECAY0 everywhere)

    @property
    def meta_dim(self) -> int:
        return int(sum(v.size for v in self.phi0.values()))


def shapes(size: str) -> dict:
    d_in, h = SIZES[size]
    return {"w1": (d_in, h), "b1": (h,), "w2": (h, NUM_CLASSES), "b2": (NUM_CLASSES,)}


def make_data(size: str, num_steps: int, seed: int = 0) -> PeerData:
    """The data of configuration ``(size, T)``; ``size`` in :data:`SIZES`."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    d_in, h = SIZES[size]
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((d_in, NUM_CLASSES)).astype(np.float32) / np.sqrt(d_in)
    x = rng.standard_normal((num_steps, BATCH, d_in)).astype(np.float32)
    x_val = rng.standard_normal((VALIDATION, d_in)).astype(np.float32)
    y = np.argmax(np.tanh(x @ teacher) + 0.5 * rng.standard_normal((num_steps, BATCH, NUM_CLASSES)), -1)
    y_val = np.argmax(np.tanh(x_val @ teacher), -1)
    params0 = {
        "w1": (rng.standard_normal((d_in, h)) / np.sqrt(d_in)).astype(np.float32),
        "b1": np.zeros(h, np.float32),
        "w2": (rng.standard_normal((h, NUM_CLASSES)) / np.sqrt(h)).astype(np.float32),
        "b2": np.zeros(NUM_CLASSES, np.float32),
    }
    phi0 = {k: np.full(v.shape, DECAY0, np.float32) for k, v in params0.items()}
    return PeerData(x, y.astype(np.int64), x_val, y_val.astype(np.int64), params0, phi0)
