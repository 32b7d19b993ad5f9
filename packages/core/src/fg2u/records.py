"""Result records: one JSON object per line (JSON Lines), written by every benchmark.

A :class:`ResultRecord` is one run (one estimator, one configuration, one seed). Benchmarks append
records to ``results/<benchmark>/*.jsonl``; :mod:`fg2u.leaderboard` aggregates them. Standard library
only, so any project can read and write records without our array backends.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "SCHEMA_VERSION",
    "ResultRecord",
    "RecordError",
    "make_record",
    "append_records",
    "read_records",
    "iter_records",
    "package_versions",
    "git_commit",
    "device_description",
    "peak_rss_bytes",
    "peak_rss_reset",
    "proc_status_kib",
    "rss_bytes",
]

SCHEMA_VERSION = 1
_TRACKED_PACKAGES = ("fg2u", "jax", "jaxlib", "flax", "optax", "torch", "transformers", "numpy", "scipy")


class RecordError(ValueError):
    """A malformed record; the message names the file and line."""


@dataclasses.dataclass
class ResultRecord:
    """One benchmark run.

    Attributes:
      benchmark: the name its plugin declares (:mod:`fg2u.benchmarks`), e.g. ``"core"``.
      task: what was solved, e.g. ``"memory"`` or the name of an equation.
      dataset: data the run used, e.g. ``"mnist"``, ``"synthetic"``.
      config: configuration name (``"smoke"``, ``"cpu"``, ``"paper"``) or a free label.
      estimator: estimator name, e.g. ``"FG2U"``, ``"RGU"``.
      settings: estimator and benchmark settings (JSON-serialisable).
      seed: random seed of the run.
      metrics: named scalar results (accuracy, relative error, loss, compiled memory …).
      peak_memory_bytes: peak memory of the run (which measure: ``settings["memory_measure"]``), or None.
      wall_time_s: wall-clock seconds of the measured part.
      device: where it ran (``"cpu: x86_64, 2 cores"``, ``"gpu: NVIDIA H100"``).
      versions: versions of the packages that matter.
      git_commit: commit of the code that produced it (``None`` outside a git checkout).
      timestamp: UTC ISO-8601 time of writing.
      schema_version: :data:`SCHEMA_VERSION` of the writer.
    """

    benchmark: str
    task: str
    dataset: str
    config: str
    estimator: str
    settings: dict[str, Any]
    seed: int
    metrics: dict[str, float]
    peak_memory_bytes: int | None
    wall_time_s: float
    device: str
    versions: dict[str, str]
    git_commit: str | None
    timestamp: str
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=_json_default, allow_nan=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRecord:
        if not isinstance(data, dict):
            raise ValueError(f"a record must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        missing = sorted(required - data.keys())
        if missing:
            raise ValueError(f"missing fields {missing}")
        unknown = sorted(data.keys() - names)
        if unknown:
            raise ValueError(f"unknown fields {unknown}")
        for name in ("settings", "metrics", "versions"):
            if not isinstance(data[name], dict):
                raise ValueError(f"field {name!r} must be an object, got {type(data[name]).__name__}")
        for key, value in data["metrics"].items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"metric {key!r} must be a number, got {value!r}")
        if not isinstance(data["seed"], int):
            raise ValueError(f"field 'seed' must be an integer, got {data['seed']!r}")
        return cls(**data)


def make_record(
    *,
    benchmark: str,
    task: str,
    dataset: str,
    config: str,
    estimator: str,
    settings: dict[str, Any],
    seed: int,
    metrics: dict[str, float],
    wall_time_s: float,
    peak_memory_bytes: int | None = None,
    device: str | None = None,
) -> ResultRecord:
    """A record with the environment fields (device, versions, commit, time) filled in."""
    bad = {k: v for k, v in metrics.items() if not isinstance(v, (int, float)) or isinstance(v, bool)}
    if bad:
        raise TypeError(f"metrics must map names to numbers; not numbers: {bad}")
    return ResultRecord(
        benchmark=benchmark,
        task=task,
        dataset=dataset,
        config=config,
        estimator=estimator,
        settings=dict(settings),
        seed=int(seed),
        metrics={k: float(v) for k, v in metrics.items()},
        peak_memory_bytes=None if peak_memory_bytes is None else int(peak_memory_bytes),
        wall_time_s=float(wall_time_s),
        device=device or device_description(),
        versions=package_versions(),
        git_commit=git_commit(),
        timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def append_records(path: str | os.PathLike[str], records: Iterable[ResultRecord]) -> Path:
    """Appends records to a ``.jsonl`` file (created with its parent folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for record in records:
            f.write(record.to_json() + "\n")
    return path


def iter_records(path: str | os.PathLike[str], *, strict: bool = True) -> Iterator[ResultRecord]:
    """Yields the records of one ``.jsonl`` file.

    Args:
      strict: raise :class:`RecordError` on the first malformed line; otherwise warn on stderr with the
        file and line and skip it.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield ResultRecord.from_dict(json.loads(line))
            except (ValueError, TypeError) as error:
                message = f"{path}:{line_number}: malformed result record ({error}); skipped"
                if strict:
                    raise RecordError(message) from error
                print(f"warning: {message}", file=sys.stderr)


def read_records(path: str | os.PathLike[str], *, strict: bool = True) -> list[ResultRecord]:
    """All records of one ``.jsonl`` file (see :func:`iter_records`)."""
    return list(iter_records(path, strict=strict))


def package_versions(names: Iterable[str] = _TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that matter (absent ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The current commit (with ``+dirty`` when the tree has changes), or None outside git."""
    try:

        def run(*args: str) -> str:
            return subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()

        commit = run("rev-parse", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no")
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_description() -> str:
    """``"cpu: <machine>, <n> cores"``; benchmarks on accelerators pass their own description."""
    return f"cpu: {platform.machine()}, {os.cpu_count()} cores"


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def proc_status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``…), or None where ``/proc`` is unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int | None:
    """Current resident set size (``VmRSS``), or None where ``/proc`` is unavailable."""
    kib = proc_status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss_reset() -> bool:
    """Collects garbage, returns freed heap to the OS and resets the peak-RSS counter; True if reset."""
    gc.collect()
    try:
        import ctypes  # noqa: PLC0415

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)
