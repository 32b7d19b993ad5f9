"""Saved weight models: the warm start of the paper's two-phase protocol (phase 2 starts φ from phase 1's).

A file holds ``{"phi": {name: tensor}, "meta": {...}}`` (φ = the weight model's parameters that were
meta-learned; ``meta``: config, method, spec, seed, run id, meta steps, weight backbone and size).
:func:`save_weights` never overwrites a file; :func:`resolve_warm_start` maps each seed to exactly one file
of a pattern (``{seed}`` and ``*``); :func:`load_weights` checks the file against the config.
"""

from __future__ import annotations

import glob
import hashlib
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from fg2u.experiment import UsageError

from .configs import LMConfig

__all__ = ["save_weights", "load_weights", "check_matches", "resolve_warm_start", "sha256"]


def save_weights(path: Path, phi: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
    """Writes ``{"phi": {name: tensor}, "meta": meta}`` to a new file (``path``, or ``path`` with ``-2``,
    ``-3``… before the suffix when it exists: a saved weight model is never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate, k = path, 1
    while True:
        try:
            with open(candidate, "xb") as f:
                torch.save({"phi": {k_: v.detach().clone() for k_, v in phi.items()}, "meta": dict(meta)}, f)
            return candidate
        except FileExistsError:
            k += 1
            candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")


def load_weights(path: str, config: LMConfig) -> dict[str, Any]:
    """A saved weight model, checked against ``config``'s weight model (:class:`UsageError` otherwise)."""
    try:
        saved = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise UsageError(f"--warm-start {path}: cannot be read as a saved weight model ({error})") from None
    meta = saved.get("meta", {}) if isinstance(saved, dict) else {}
    if not isinstance(saved, dict) or "phi" not in saved:
        raise UsageError(f"--warm-start {path}: not a weight model saved by this benchmark (no 'phi')")
    for key in ("weight_backbone", "weight_model_size"):
        if meta.get(key) != getattr(config, key):
            raise UsageError(
                f"--warm-start {path}: saved with {key} {meta.get(key)!r}, this config has {getattr(config, key)!r}; "
                f"pass --{key.replace('_', '-')} {meta.get(key)} or another file"
            )
    return saved


def check_matches(path: str, saved: Mapping[str, Any], phi: Mapping[str, Any]) -> None:
    """:class:`UsageError` unless ``saved["phi"]`` has ``phi``'s names and shapes."""
    theirs = {k: tuple(v.shape) for k, v in saved["phi"].items()}
    ours = {k: tuple(v.shape) for k, v in phi.items()}
    if theirs != ours:
        diff = sorted(set(theirs.items()) ^ set(ours.items()))[:3]
        raise UsageError(f"--warm-start {path}: its parameters differ from this weight model's (e.g. {diff})")


def sha256(path: str) -> str:
    """The hex SHA-256 of a file (records name the warm start's file and its digest)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def resolve_warm_start(pattern: str, seeds: Sequence[int]) -> dict[int, str]:
    """Each seed's one file matching ``pattern`` (``{seed}`` replaced, then globbed); :class:`UsageError`
    naming the seed when none or several match."""
    out = {}
    for seed in seeds:
        matches = sorted(glob.glob(pattern.replace("{seed}", str(seed))))
        if len(matches) != 1:
            found = f"{len(matches)} files match: {', '.join(matches[:4])}" if matches else "no file matches"
            raise UsageError(
                f"--warm-start {pattern!r}: {found} for seed {seed}; give a path ({{seed}} and * allowed) that "
                "names one saved weight model per seed (see <out>/weights/)"
            )
        out[seed] = matches[0]
    return out
