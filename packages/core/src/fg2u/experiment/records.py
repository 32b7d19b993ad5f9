"""The one result-record schema every benchmark writes, and its JSON Lines reader and writer.

A :class:`ResultRecord` is one run (one method, one task, one seed)::

    benchmark, task, dataset, config          what was solved, in which named configuration
    estimator, estimator_spec,                 the method: display name, the spec it was built from
      estimator_settings                       (``fg2u.experiment.spec``) and its full settings
    problem_settings                           the settings that define the problem (declared by the
                                               benchmark: IPC, T, the equation, the noise level ...)
    config_settings                            the config's other settings (budget, meta optimiser,
                                               evaluation protocol)
    seed, status                               ``"ok"``, ``"diverged"`` (a non-finite loss or estimate) or
                                               ``"failed"`` (an error; ``details["error"]`` says which)
    metrics                                    named scalars; non-finite values are written as ``null``
                                               and listed in ``nonfinite_metrics`` (standard JSON)
    memory                                     :class:`Memory`: which measure, bytes, deterministic or not
    curve                                      :class:`Curve`: a held-out metric along training (anytime)
    details                                    per-run outputs that are not settings (a list of
                                               evaluation accuracies, an image path, notes)
    wall_time_s, device, run_id, provenance,   cost, where and from which code (``provenance``), when
      timestamp, schema_version

Files are ``results/<benchmark>/<config>.jsonl``; :func:`append_records` appends atomically and never glues
a record to a torn last line; :func:`iter_records` names the file and line of anything malformed.
Standard library only.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fg2u.experiment.provenance import Provenance, RunContext, now_iso, start_run

__all__ = [
    "SCHEMA_VERSION",
    "STATUSES",
    "MEASURES",
    "Memory",
    "Curve",
    "ResultRecord",
    "RecordError",
    "make_record",
    "append_records",
    "read_records",
    "iter_records",
    "check_writable",
    "parse_timestamp",
]

SCHEMA_VERSION = 2
STATUSES = ("ok", "diverged", "failed")

#: Memory measures: name → (deterministic, comparable across runs of one invocation, what it is).
MEASURES: dict[str, tuple[bool, bool, str]] = {
    "xla_temp_bytes": (
        True,
        True,
        "XLA's scratch memory of one compiled meta step (memory_analysis().temp_size_in_bytes): arguments, "
        "outputs and the process excluded; the same for the same shapes and code",
    ),
    "peak_rss_growth": (
        False,
        True,
        "growth of the peak resident set size of a fresh process during the measured call",
    ),
    "peak_rss": (
        False,
        False,
        "the whole process's peak resident set size so far (rises in run order within one invocation: "
        "never compared between runs)",
    ),
}


class RecordError(ValueError):
    """A malformed record; the message names the file and line when read from a file."""


def parse_timestamp(text: Any) -> _dt.datetime:
    """An ISO 8601 timestamp with a UTC offset; ``ValueError`` naming the text otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"'timestamp' must be an ISO 8601 string, got {text!r}")
    try:
        value = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'timestamp' {text!r} is not an ISO 8601 time such as 2026-12-04T20:30:15+00:00") from None
    if value.tzinfo is None:
        raise ValueError(f"'timestamp' {text!r} has no UTC offset")
    return value


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Memory:
    """The memory of a run: which :data:`MEASURES` entry, and its bytes."""

    measure: str
    bytes: int

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ValueError(f"memory measure must be one of {tuple(MEASURES)}, got {self.measure!r}")
        if isinstance(self.bytes, bool) or not isinstance(self.bytes, int) or self.bytes < 0:
            raise ValueError(f"memory bytes must be an integer >= 0, got {self.bytes!r}")

    @property
    def deterministic(self) -> bool:
        """Whether the same code and shapes give the same bytes (gated exactly by the regression check)."""
        return MEASURES[self.measure][0]

    @property
    def comparable(self) -> bool:
        """Whether two runs' values may be compared (a whole process's high-water mark may not)."""
        return MEASURES[self.measure][1]

    def to_dict(self) -> dict[str, Any]:
        return {"measure": self.measure, "bytes": self.bytes}

    @classmethod
    def from_dict(cls, data: Any) -> Memory:
        if not isinstance(data, dict) or set(data) != {"measure", "bytes"}:
            raise ValueError(f"'memory' must be an object with 'measure' and 'bytes', got {data!r}")
        return cls(data["measure"], data["bytes"])


@dataclasses.dataclass(frozen=True)
class Curve:
    """A held-out metric along training (an anytime curve): ``value[i]`` after ``step[i]`` meta steps and
    ``seconds[i]`` seconds of the run (compilation included); ``cost`` holds further cumulative costs of the
    same points (e.g. ``{"solver_calls": [...]}``). ``step`` is non-decreasing; values may be NaN."""

    metric: str
    step: tuple[int, ...]
    seconds: tuple[float, ...]
    value: tuple[float, ...]
    cost: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"curve metric must be a non-empty string, got {self.metric!r}")
        n = len(self.step)
        columns = {"seconds": self.seconds, "value": self.value, **{f"cost.{k}": v for k, v in self.cost.items()}}
        for name, column in columns.items():
            if len(column) != n:
                raise ValueError(f"curve {self.metric!r}: {name} has {len(column)} points, step has {n}")
        if any(b < a for a, b in zip(self.step, self.step[1:])):
            raise ValueError(f"curve {self.metric!r}: steps must not decrease, got {list(self.step)}")
        object.__setattr__(self, "step", tuple(int(s) for s in self.step))
        object.__setattr__(self, "seconds", tuple(float(s) for s in self.seconds))
        object.__setattr__(self, "value", tuple(float(v) for v in self.value))
        object.__setattr__(self, "cost", {k: tuple(float(x) for x in v) for k, v in self.cost.items()})

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "step": list(self.step),
            "seconds": list(self.seconds),
            "value": [v if math.isfinite(v) else None for v in self.value],
            "cost": {k: list(v) for k, v in self.cost.items()},
        }

    @classmethod
    def from_dict(cls, data: Any) -> Curve:
        if not isinstance(data, dict):
            raise ValueError(f"'curve' must be an object, got {type(data).__name__}")
        try:
            values = [math.nan if v is None else _number("a curve value", v) for v in data["value"]]
            return cls(
                data["metric"],
                tuple(data["step"]),
                tuple(_number("a curve time", s) for s in data["seconds"]),
                tuple(values),
                {str(k): tuple(_number("a curve cost", x) for x in v) for k, v in data.get("cost", {}).items()},
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"'curve' is malformed ({error!r})") from None


def _check_str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {name!r} must be a non-empty string, got {value!r}")
    return value


def _jsonable(value: Any, where: str) -> Any:
    """Settings and details as plain JSON (non-finite floats refused: settings are inputs)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}: settings and details must be finite (put results in metrics)")
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist(), where)
    return str(value)


@dataclasses.dataclass(frozen=True)
class ResultRecord:
    """One run (module docstring). Built by :func:`make_record`; read by :func:`iter_records`."""

    benchmark: str
    task: str
    dataset: str
    config: str
    estimator: str
    estimator_spec: str
    estimator_settings: dict[str, Any]
    problem_settings: dict[str, Any]
    config_settings: dict[str, Any]
    seed: int
    status: str
    metrics: dict[str, float]
    memory: Memory | None
    curve: Curve | None
    details: dict[str, Any]
    wall_time_s: float
    device: str
    run_id: str | None
    provenance: Provenance
    timestamp: str
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in ("benchmark", "task", "dataset", "config", "estimator", "device"):
            _check_str(name, getattr(self, name))
        if not isinstance(self.estimator_spec, str):
            raise ValueError(f"field 'estimator_spec' must be a string, got {self.estimator_spec!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"field 'seed' must be an integer >= 0, got {self.seed!r}")
        if self.status not in STATUSES:
            raise ValueError(f"field 'status' must be one of {STATUSES}, got {self.status!r}")
        for name in ("estimator_settings", "problem_settings", "config_settings", "details", "metrics"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"field {name!r} must be an object, got {type(getattr(self, name)).__name__}")
        metrics = {str(k): _number(f"metric {k!r}", v) for k, v in self.metrics.items()}
        object.__setattr__(self, "metrics", metrics)
        if self.status == "ok" and not metrics:
            raise ValueError("a record with status 'ok' needs at least one metric")
        wall = _number("field 'wall_time_s'", self.wall_time_s)
        if not (math.isfinite(wall) and wall >= 0):
            raise ValueError(f"field 'wall_time_s' must be a finite number >= 0, got {self.wall_time_s!r}")
        if self.run_id is not None:
            _check_str("run_id", self.run_id)
        parse_timestamp(self.timestamp)
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version!r}: this reader knows {SCHEMA_VERSION} "
                "(records of schema 1 are converted by scripts/migrate_records.py)"
            )

    @property
    def settings(self) -> dict[str, Any]:
        """Problem settings, and the config's and the estimator's settings under ``config`` and ``estimator``:
        what makes two runs the same experiment (the leaderboard groups seeds by it)."""
        return {**self.problem_settings, "config": self.config_settings, "estimator": self.estimator_settings}

    @property
    def nonfinite_metrics(self) -> dict[str, str]:
        """Metrics whose value is NaN or ±inf, as ``{"name": "nan" | "inf" | "-inf"}``."""
        return {k: repr(v) for k, v in self.metrics.items() if not math.isfinite(v)}

    @property
    def time(self) -> _dt.datetime:
        """``timestamp`` parsed."""
        return parse_timestamp(self.timestamp)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "benchmark": self.benchmark,
            "task": self.task,
            "dataset": self.dataset,
            "config": self.config,
            "estimator": self.estimator,
            "estimator_spec": self.estimator_spec,
            "estimator_settings": _jsonable(self.estimator_settings, "estimator_settings"),
            "problem_settings": _jsonable(self.problem_settings, "problem_settings"),
            "config_settings": _jsonable(self.config_settings, "config_settings"),
            "seed": self.seed,
            "status": self.status,
            "metrics": {k: v if math.isfinite(v) else None for k, v in self.metrics.items()},
            "nonfinite_metrics": self.nonfinite_metrics,
            "memory": None if self.memory is None else self.memory.to_dict(),
            "curve": None if self.curve is None else self.curve.to_dict(),
            "details": _jsonable(self.details, "details"),
            "wall_time_s": self.wall_time_s,
            "device": self.device,
            "run_id": self.run_id,
            "provenance": self.provenance.to_dict(),
            "timestamp": self.timestamp,
        }
        return out

    def to_json(self) -> str:
        """One line of standard JSON (no NaN/Infinity tokens)."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Any) -> ResultRecord:
        """The record of a parsed JSON object; ``ValueError`` naming the first problem."""
        if not isinstance(data, dict):
            raise ValueError(f"a record must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {version!r}: this reader knows {SCHEMA_VERSION} "
                "(convert schema-1 files with scripts/migrate_records.py)"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(names - data.keys())
        if missing:
            raise ValueError(f"missing fields {missing}")
        unknown = sorted(data.keys() - names - {"nonfinite_metrics"})
        if unknown:
            raise ValueError(f"unknown fields {unknown}")
        nonfinite = data.get("nonfinite_metrics", {})
        if not isinstance(nonfinite, dict) or not isinstance(data["metrics"], dict):
            raise ValueError("'metrics' and 'nonfinite_metrics' must be objects")
        metrics: dict[str, float] = {}
        for key, value in data["metrics"].items():
            if value is None:
                flag = nonfinite.get(key)
                if flag not in ("nan", "inf", "-inf"):
                    raise ValueError(f"metric {key!r} is null without a 'nonfinite_metrics' flag (nan, inf, -inf)")
                metrics[key] = float(flag)
            else:
                metrics[key] = _number(f"metric {key!r}", value)
        fields = {k: data[k] for k in names}
        fields["metrics"] = metrics
        fields["memory"] = None if data["memory"] is None else Memory.from_dict(data["memory"])
        fields["curve"] = None if data["curve"] is None else Curve.from_dict(data["curve"])
        fields["provenance"] = Provenance.from_dict(data["provenance"])
        return cls(**fields)


def make_record(
    *,
    benchmark: str,
    task: str,
    dataset: str,
    config: str,
    estimator: str,
    seed: int,
    metrics: Mapping[str, float],
    wall_time_s: float,
    estimator_spec: str = "",
    estimator_settings: Mapping[str, Any] | None = None,
    problem_settings: Mapping[str, Any] | None = None,
    config_settings: Mapping[str, Any] | None = None,
    status: str = "ok",
    memory: Memory | None = None,
    curve: Curve | None = None,
    details: Mapping[str, Any] | None = None,
    run: RunContext | None = None,
) -> ResultRecord:
    """A record with the run's provenance filled in (``run``: the invocation's :class:`RunContext`;
    default: a context made now, for one-off records outside the runner)."""
    bad = {k: v for k, v in metrics.items() if isinstance(v, bool) or not isinstance(v, (int, float))}
    if bad:
        raise TypeError(f"metrics must map names to numbers; not numbers: {bad}")
    run = (run or start_run()).refresh_accelerator()
    return ResultRecord(
        benchmark=benchmark,
        task=task,
        dataset=dataset,
        config=config,
        estimator=estimator,
        estimator_spec=estimator_spec,
        estimator_settings=dict(estimator_settings or {}),
        problem_settings=dict(problem_settings or {}),
        config_settings=dict(config_settings or {}),
        seed=int(seed),
        status=status,
        metrics={k: float(v) for k, v in metrics.items()},
        memory=memory,
        curve=curve,
        details=dict(details or {}),
        wall_time_s=float(wall_time_s),
        device=run.device,
        run_id=run.run_id,
        provenance=run.provenance,
        timestamp=now_iso(),
    )


def check_writable(folder: str | os.PathLike[str]) -> Path:
    """Creates ``folder`` if needed and checks a file can be written there; ``PermissionError``/``OSError``
    with a message naming the folder otherwise. Call it before any work."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise OSError(
            f"cannot write result records to {str(path)!r} ({error.strerror or error}); choose --out"
        ) from None
    return path


def append_records(path: str | os.PathLike[str], records: Iterable[ResultRecord]) -> Path:
    """Appends records to a ``.jsonl`` file (created with its folders), atomically and newline-safe.

    The lines are written with one ``write`` on a file opened for appending, then flushed to disk; when the
    file's last byte is not a newline (a line torn by a full disk or a kill), a newline is written first,
    so the torn line stays one malformed line (reported by :func:`iter_records`) and the new records are
    intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(record.to_json() + "\n" for record in records).encode("utf-8")
    if not payload:
        return path
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            payload = b"\n" + payload
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def iter_records(path: str | os.PathLike[str], *, strict: bool = True) -> Iterator[ResultRecord]:
    """Yields the records of one ``.jsonl`` file.

    Args:
      strict: raise :class:`RecordError` naming the file and line on the first malformed line (invalid
        UTF-8 included); otherwise skip it. Use :func:`fg2u.leaderboard.aggregate.load_jsonl` to collect
        the problems instead.
    """
    path = Path(path)
    with path.open("rb") as f:
        for line_number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                yield ResultRecord.from_dict(json.loads(raw.decode("utf-8")))
            except (ValueError, TypeError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                if strict:
                    raise RecordError(f"{path}:{line_number}: malformed result record ({error})") from error


def read_records(path: str | os.PathLike[str], *, strict: bool = True) -> list[ResultRecord]:
    """All records of one ``.jsonl`` file (see :func:`iter_records`)."""
    return list(iter_records(path, strict=strict))


def records_by_run(records: Sequence[ResultRecord]) -> dict[str | None, list[ResultRecord]]:
    """Records grouped by ``run_id`` (``None``: records converted from schema 1, before run ids)."""
    out: dict[str | None, list[ResultRecord]] = {}
    for record in records:
        out.setdefault(record.run_id, []).append(record)
    return out
