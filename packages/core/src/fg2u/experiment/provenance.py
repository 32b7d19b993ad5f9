"""Where a record comes from: the code that ran (commit, dirty source files), the command, the machine.

[`RunContext`][fg2u.experiment.provenance.RunContext] is made once per invocation
([`start_run`][fg2u.experiment.provenance.start_run]), before any work, so every record of the invocation carries the
commit of the code that was loaded — not of whatever the checkout holds when a record is written hours later — and the
same run id; [`write_run_marker`][fg2u.experiment.provenance.write_run_marker] writes the invocation's start and
completion markers (``<out>/runs/<run_id>.json``) so that a killed invocation's records are labelled partial. Standard
library only.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "Provenance",
    "RunContext",
    "start_run",
    "code_commit",
    "package_versions",
    "benchmark_distributions",
    "cpu_model",
    "accelerator",
    "device_description",
    "write_run_marker",
    "read_run_markers",
    "SOURCE_PATHSPEC",
    "TRACKED_PACKAGES",
]

#: Distributions whose versions every record carries, besides every distribution that registers a benchmark
#: (entry points ``fg2u.benchmarks``: this monorepo's benchmark packages, found without naming them here).
TRACKED_PACKAGES = (
    "fg2u",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "torch",
    "transformers",
    "numpy",
    "scipy",
)

#: What counts as source when deciding whether the code that ran was dirty: the packages, scripts and
#: the nox file, tracked or untracked — never ``results/`` (records appended by the run itself) or docs.
SOURCE_PATHSPEC = ("packages", "scripts", "noxfile.py", ":(exclude)packages/*/README.md")


def now_iso() -> str:
    """The current UTC time, ISO 8601 with seconds and offset (``2026-12-04T20:30:15+00:00``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def benchmark_distributions() -> list[str]:
    """The distributions that register a benchmark (entry points ``fg2u.benchmarks``), sorted."""
    found: set[str] = set()
    for entry_point in metadata.entry_points(group="fg2u.benchmarks"):
        dist = getattr(entry_point, "dist", None)
        if dist is not None and dist.metadata["Name"]:
            found.add(dist.metadata["Name"])
    return sorted(found)


def package_versions(names: Iterable[str] | None = None) -> dict[str, str]:
    """Installed versions of ``names`` plus ``python`` (absent distributions are left out); default:
    `TRACKED_PACKAGES` and [`benchmark_distributions`][fg2u.experiment.provenance.benchmark_distributions]."""
    if names is None:
        names = dict.fromkeys([*TRACKED_PACKAGES, *benchmark_distributions()])
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20, check=True
    ).stdout.strip()


def code_commit(module_file: str | os.PathLike[str] | None = None) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout that holds ``module_file`` (default: the ``fg2u`` package
    that is running), or ``(None, None)`` when that code is not in a git checkout (an installed wheel).

    ``dirty`` is True when a source file (`SOURCE_PATHSPEC`: packages, scripts, the nox file; tracked
    changes and untracked files that git does not ignore) differs from the commit. Result files appended by
    the run never make it dirty.
    """
    if module_file is None:
        module_file = Path(__file__).resolve().parent.parent
    start = Path(module_file).resolve()
    start = start if start.is_dir() else start.parent
    try:
        root = Path(_git(start, "rev-parse", "--show-toplevel"))
        commit = _git(root, "rev-parse", "HEAD")
        status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *SOURCE_PATHSPEC)
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(status)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere), or ``"unknown"``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def accelerator() -> str | None:
    """The accelerator the backends loaded in this process see, or None (CPU only).

    Only backends already imported are asked (asking would import them): JAX's first non-CPU device
    kind, or torch's CUDA device name."""
    jax = sys.modules.get("jax")
    if jax is not None:
        try:
            devices = [d for d in jax.devices() if d.platform != "cpu"]
            if devices:
                return f"{devices[0].platform}: {devices[0].device_kind} x{len(devices)}"
        except RuntimeError:
            pass
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return f"cuda: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
        except (RuntimeError, AssertionError):
            pass
    return None


def device_description() -> str:
    """A short device label for grouping runs: ``"cpu: x86_64, 2 cores"`` or ``"gpu: NVIDIA H200 x1"``."""
    found = accelerator()
    if found is not None:
        return "gpu: " + found.split(": ", 1)[1]
    return f"cpu: {platform.machine()}, {os.cpu_count()} cores"


@dataclasses.dataclass(frozen=True)
class Provenance:
    """The code and machine of a run.

    Attributes:
      git_commit: commit of the checkout holding the code that ran (None outside git).
      dirty: source files differed from that commit (None when unknown).
      command: the command line (``sys.argv`` with the interpreter).
      host: the host name.
      cpu: the CPU model.
      accelerator: the accelerator the run's backend saw, or None.
      versions: the versions of fg2u, of the installed benchmark packages and of the libraries.
    """

    git_commit: str | None
    dirty: bool | None
    command: tuple[str, ...]
    host: str
    cpu: str
    accelerator: str | None
    versions: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["command"] = list(self.command)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Provenance:
        if not isinstance(data, dict):
            raise ValueError(f"'provenance' must be an object, got {type(data).__name__}")
        missing = sorted({f.name for f in dataclasses.fields(cls)} - data.keys())
        if missing:
            raise ValueError(f"'provenance' misses {missing}")
        if not isinstance(data["versions"], dict) or not isinstance(data["command"], list):
            raise ValueError("'provenance.versions' must be an object and 'provenance.command' a list")
        return cls(
            git_commit=data["git_commit"],
            dirty=data["dirty"],
            command=tuple(str(c) for c in data["command"]),
            host=str(data["host"]),
            cpu=str(data["cpu"]),
            accelerator=data["accelerator"],
            versions={str(k): str(v) for k, v in data["versions"].items()},
        )


@dataclasses.dataclass(frozen=True)
class RunContext:
    """One invocation: its id, when it started, its provenance and device label (made by
    [`start_run`][fg2u.experiment.provenance.start_run])."""

    run_id: str
    started: str
    provenance: Provenance
    device: str

    def refresh_accelerator(self) -> RunContext:
        """The context with the accelerator and device label read again (after the backend was imported)."""
        found = accelerator()
        if found == self.provenance.accelerator:
            return self
        return dataclasses.replace(
            self,
            provenance=dataclasses.replace(self.provenance, accelerator=found),
            device=device_description(),
        )


def start_run(argv: Sequence[str] | None = None, *, code: str | os.PathLike[str] | None = None) -> RunContext:
    """A new [`RunContext`][fg2u.experiment.provenance.RunContext]: a fresh run id (time + random suffix), the commit
    and dirty state of the code that is loaded (``code``: a module file or folder; default the ``fg2u`` package), the
    command line, host, CPU, accelerator and versions."""
    started = now_iso()
    stamp = started.replace("-", "").replace(":", "").replace("+0000", "Z")[:15]
    commit, dirty = code_commit(code)
    command = (sys.executable, *(sys.argv if argv is None else argv))
    provenance = Provenance(
        git_commit=commit,
        dirty=dirty,
        command=tuple(command),
        host=socket.gethostname(),
        cpu=cpu_model(),
        accelerator=accelerator(),
        versions=package_versions(),
    )
    return RunContext(f"{stamp}-{secrets.token_hex(3)}", started, provenance, device_description())


def write_run_marker(
    out: str | os.PathLike[str], context: RunContext, *, status: str, expected: int, written: int, note: str = ""
) -> Path:
    """Writes ``<out>/runs/<run_id>.json`` atomically: ``status`` ``"running"`` (at the start), ``"complete"``,
    ``"failed"`` or ``"interrupted"`` (at the end), with the records expected and written so far."""
    folder = Path(out) / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{context.run_id}.json"
    body = {
        "run_id": context.run_id,
        "status": status,
        "started": context.started,
        "updated": now_iso(),
        "expected_records": expected,
        "written_records": written,
        "note": note,
        "provenance": context.provenance.to_dict(),
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_run_markers(folder: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Every run marker below ``folder`` (``**/runs/*.json``) by run id; unreadable markers are skipped."""
    markers: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(folder).rglob("runs/*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("run_id"), str):
            markers[data["run_id"]] = data
    return markers
