"""Loading result records and aggregating them over seeds.

Loading
-------
`load_results` reads every ``results/**/*.jsonl`` (except the regression baselines under
``results/baselines/`` and hidden folders). A line that is not valid JSON, not a JSON object, misses a
field of [`fg2u.experiment.records.ResultRecord`][fg2u.experiment.records.ResultRecord], has a field of the wrong type,
a metric outside the bounds its benchmark declares (an accuracy of 1e9 %), or no metrics at all is
*skipped* and reported as a `LoadIssue` naming the file and the line; it is never merged into a
group. A ``.jsonl`` file none of whose lines looks like a record (no ``benchmark`` or ``metrics`` key, e.g.
a predictions log) is skipped with one message for the whole file.

Grouping
--------
Runs are grouped by `GroupKey`: ``benchmark``, ``task``, ``dataset``, ``config``, ``estimator``,
**all settings** of the record — its problem settings, and its config's and estimator's settings under
``config.`` and ``estimator.`` (so runs that differ in, e.g., ``ipc``, ``num_steps``, ``meta_dim``,
``num_directions`` or the memory measure are never merged) — except those that are bookkeeping or per-run
outputs rather than configuration (`is_ignored_setting`: the names in `IGNORED_SETTINGS`,
names ending in ``_path``, ``_dir``, ``_file``, ``_grid``, ``_png``, and names with a word of
`PER_RUN_WORDS` such as ``eval_accuracies`` or ``loss_history``), and the ``device`` (set
``include_device=False`` to pool devices; the regression check does). Nested settings are flattened with
dots (``{"inner": {"lr": 0.1}}`` → ``inner.lr``); lists and other non-scalars are compared through their
canonical JSON text. When runs of one estimator end up in single-seed groups that differ only in some
settings, a note names those settings (they may be per-run values that belong in metrics).

Within a group, two records with the same seed are repeated runs of one experiment (for example a
benchmark run twice appending to the same file): the most recent one (by its parsed ``timestamp``; the
later line on a tie) is kept and the others are reported as superseded, so a seed is never counted twice.

Records of an invocation that did not complete (its marker ``runs/<run_id>.json`` says running,
interrupted or failed) are kept and counted in [`GroupSummary.partial`][fg2u.estimators.TwoPhase.switch_step]; records
whose status is ``diverged`` or ``failed`` count as non-finite values of every metric of their group.

Statistics
----------
For every metric, plus the record fields ``wall_time_s`` and ``memory_bytes`` (the record's memory):
mean, sample standard deviation (``ddof=1``; undefined for ``n = 1``), and ``n`` over the seeds whose
value is finite. Non-finite values (NaN/inf: diverged runs) are counted in ``n_nonfinite`` and left out of
mean and std, and the renderers show that count next to the cell.

Direction of "best"
-------------------
`metric_direction` maps a metric name to ``"higher"``, ``"lower"`` or ``None`` (unknown) from its
``_``-separated words; words meaning "lower is better" win when both kinds occur (``top1_error``):

============================  ==========================================================================
higher is better              accuracy, acc, f1, em, exact, match, score, auc, r2, precision, recall,
                              cosine, similarity, bleu, rouge, top1, top5, speedup, throughput
lower is better               error, err, loss, nll, mse, rmse, mae, kl, perplexity, ppl, bias,
                              variance, bytes, memory, mem, time, seconds, latency, wall
no direction                  any name with std, stdev, stddev, sem, spread, iqr (a spread of values)
============================  ==========================================================================

Best entries
------------
`best_entries` marks, per metric with a direction, the best mean among entries with the same
`comparison_key` (benchmark, task, data set, config, device and the record's problem settings, which
its benchmark declares; memory only between equal comparable memory measures, never a whole process's
high-water mark). Yard sticks
(estimators a benchmark declares as ``yardsticks``, [`fg2u.benchmarks.Benchmark`][fg2u.benchmarks.Benchmark], or records
with a ``baseline`` setting) are never marked; nor is a lone entry or a
pool where all entries are equal.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import re
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fg2u.benchmarks import Benchmark
from fg2u.experiment.provenance import read_run_markers
from fg2u.experiment.records import MEASURES, ResultRecord

__all__ = [
    "IGNORED_SETTINGS",
    "EXCLUDED_DIRS",
    "NON_COMPETING_ESTIMATORS",
    "competes",
    "PER_RUN_WORDS",
    "is_problem_setting",
    "memory_metric",
    "check_bounds",
    "is_ignored_setting",
    "LoadIssue",
    "LoadedRecord",
    "LoadResult",
    "GroupKey",
    "MetricStats",
    "GroupSummary",
    "load_results",
    "load_jsonl",
    "flatten_settings",
    "group_key",
    "aggregate",
    "summarize",
    "metric_direction",
    "comparison_key",
    "best_entries",
    "to_dataframe",
    "require",
]

#: Settings keys that do not define an experiment (bookkeeping); left out of the group key.
IGNORED_SETTINGS: frozenset[str] = frozenset(
    {
        "seed",
        "seeds",
        "run_id",
        "timestamp",
        "data_dir",
        "data_path",
        "data_root",
        "out",
        "out_dir",
        "output",
        "output_dir",
        "results",
        "log_dir",
        "cache_dir",
        "progress",
        "verbose",
    }
)

#: Words marking a setting as a per-run output (a list of evaluation results, an artefact), not configuration.
PER_RUN_WORDS: frozenset[str] = frozenset(
    {"accuracies", "losses", "history", "curve", "trace", "artifact", "artefact", "artifacts", "artefacts"}
)
_IGNORED_SUFFIXES = ("_path", "_dir", "_file", "_grid", "_png")


def is_ignored_setting(name: str) -> bool:
    """Whether a (possibly dotted) settings key is left out of the group key (module docstring)."""
    last = name.rsplit(".", 1)[-1]
    if name in IGNORED_SETTINGS or last in IGNORED_SETTINGS:
        return True
    if last.endswith(_IGNORED_SUFFIXES):
        return True
    return bool(set(re.split(r"[^a-z0-9]+", last.lower())) & PER_RUN_WORDS)


def is_problem_setting(name: str) -> bool:
    """Whether a flattened settings key is one of the record's problem settings (not ``config.*`` or
    ``estimator.*``): runs compete for "best" only with runs of equal problem settings."""
    return not name.startswith(("config.", "estimator."))


def memory_metric(measure: str) -> str:
    """The name of the statistic of a record's memory with that measure: ``memory_<measure>_bytes``
    (``memory_xla_temp_bytes``, ``memory_peak_rss_growth_bytes``, ``memory_peak_rss_bytes``)."""
    return f"memory_{measure.removesuffix('_bytes')}_bytes"


_NOT_COMPARABLE = frozenset(memory_metric(m) for m, (_, comparable, _) in MEASURES.items() if not comparable)


#: Kept for compatibility: yard-stick estimator names now come from the benchmarks' declarations
#: (``Benchmark.yardsticks``), passed to `competes` and `best_entries`.
NON_COMPETING_ESTIMATORS: frozenset[str] = frozenset()

#: Sub-folders of the results folder that `load_results` does not read.
EXCLUDED_DIRS: frozenset[str] = frozenset({"baselines"})

_HIGHER_WORDS = frozenset(
    "accuracy acc f1 em exact match score auc r2 precision recall cosine similarity bleu rouge top1 top5"
    " speedup throughput".split()
)
_LOWER_WORDS = frozenset(
    "error err errors loss nll mse rmse mae kl perplexity ppl bias variance bytes memory mem time seconds"
    " latency wall".split()
)

#: A spread (``test_accuracy_std``) is not better when higher or lower.
_SPREAD_WORDS = frozenset({"std", "stdev", "stddev", "sem", "spread", "iqr"})


# --------------------------------------------------------------------------------------------- loading
@dataclasses.dataclass(frozen=True)
class LoadIssue:
    """A problem found while reading results: ``path:line: message`` (``line`` 0 = the whole file)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclasses.dataclass(frozen=True)
class LoadedRecord:
    """A record with where it came from."""

    record: ResultRecord
    path: str
    line: int


@dataclasses.dataclass(frozen=True)
class LoadResult:
    """Valid records, and the lines that were skipped (``issues``)."""

    records: tuple[LoadedRecord, ...]
    issues: tuple[LoadIssue, ...]
    files: tuple[str, ...]
    partial_runs: frozenset[str] = frozenset()  # run ids whose invocation did not complete


def check_bounds(record: ResultRecord, benchmarks: Iterable[Benchmark] = ()) -> None:
    """``ValueError`` naming the metric when a headline metric of ``record`` lies outside the bounds its
    benchmark declares (`fg2u.benchmarks.Metric.bounds`; NaN/inf are left to the statistics)."""
    for bench in benchmarks:
        if bench.name != record.benchmark:
            continue
        for metric in bench.metrics:
            value = record.metrics.get(metric.name)
            low, high = metric.bounds or (-math.inf, math.inf)
            if value is not None and math.isfinite(value) and not low <= value <= high:
                raise ValueError(
                    f"metric {metric.name!r} = {value!r} is outside its declared range [{low}, {high}] "
                    f"({metric.unit or 'no unit'}): an implausible value, not a result"
                )


def _check_record(data: Any, benchmarks: Iterable[Benchmark] = ()) -> ResultRecord:
    """A [`ResultRecord`][fg2u.experiment.records.ResultRecord] from a parsed JSON value, with the declared bounds
    checked."""
    record = ResultRecord.from_dict(data)
    if record.status == "ok" and not record.metrics:
        raise ValueError("partial record: 'metrics' is empty")
    check_bounds(record, benchmarks)
    return record


def load_jsonl(
    path: str | os.PathLike, *, warn: bool = True, benchmarks: Iterable[Benchmark] = ()
) -> tuple[list[LoadedRecord], list[LoadIssue]]:
    """Reads one ``.jsonl`` file; malformed lines (invalid UTF-8 included: only that line) become
    `LoadIssue` s naming the file and line (printed when ``warn``). ``benchmarks``: declarations whose
    metric bounds are checked."""
    path = Path(path)
    records: list[LoadedRecord] = []
    issues: list[LoadIssue] = []
    try:
        raw_lines = path.read_bytes().split(b"\n")
    except OSError as error:
        issues.append(LoadIssue(str(path), 0, f"cannot read file ({error}); skipped"))
        raw_lines = []
    record_like = False
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            issues.append(LoadIssue(str(path), number, f"malformed result record (not UTF-8: {error}); skipped"))
            continue
        try:
            data = json.loads(line)
            record_like = record_like or (isinstance(data, dict) and ("benchmark" in data or "metrics" in data))
            records.append(LoadedRecord(_check_record(data, benchmarks), str(path), number))
        except (ValueError, TypeError) as error:
            issues.append(LoadIssue(str(path), number, f"malformed result record ({error}); skipped"))
    if issues and not records and not record_like:  # e.g. a predictions log next to the records
        issues = [
            LoadIssue(
                str(path),
                0,
                f"not a result-record file (none of its {len(issues)} line(s) has 'benchmark' or 'metrics'); skipped",
            )
        ]
    if warn:
        for issue in issues:
            print(f"warning: {issue}", file=sys.stderr)
    return records, issues


def load_results(
    results_dir: str | os.PathLike,
    *,
    exclude_dirs: Iterable[str] = EXCLUDED_DIRS,
    warn: bool = True,
    benchmarks: Iterable[Benchmark] = (),
) -> LoadResult:
    """Reads every ``*.jsonl`` below ``results_dir`` (sorted paths, baselines and hidden folders excluded).

    Args:
      results_dir: the results folder (``results/``). A missing folder gives no records and one issue.
      exclude_dirs: names of top-level sub-folders to skip.
      warn: print every issue on stderr as ``warning: FILE:LINE: message``.
      benchmarks: declarations whose metric bounds every record is checked against.

    Run markers (``**/runs/<run_id>.json``,
    [`fg2u.experiment.provenance.write_run_marker`][fg2u.experiment.provenance.write_run_marker]) give ``partial_runs``:
    invocations that were interrupted, failed or are still running.
    """
    root = Path(results_dir)
    if not root.is_dir():
        issue = LoadIssue(str(root), 0, "results folder does not exist; no records")
        if warn:
            print(f"warning: {issue}", file=sys.stderr)
        return LoadResult((), (issue,), ())
    excluded = set(exclude_dirs)
    paths = []
    for path in sorted(root.rglob("*.jsonl")):
        parts = path.relative_to(root).parts
        if parts[0] in excluded or any(part.startswith(".") for part in parts):
            continue
        paths.append(path)
    records: list[LoadedRecord] = []
    issues: list[LoadIssue] = []
    declared = tuple(benchmarks)
    for path in paths:
        file_records, file_issues = load_jsonl(path, warn=warn, benchmarks=declared)
        records += file_records
        issues += file_issues
    partial = frozenset(
        run_id for run_id, marker in read_run_markers(root).items() if marker.get("status") != "complete"
    )
    return LoadResult(tuple(records), tuple(issues), tuple(str(p) for p in paths), partial)


# -------------------------------------------------------------------------------------------- grouping
def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def flatten_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Flat ``{dotted.key: scalar-or-JSON-text}`` of ``settings`` without the keys that
    `is_ignored_setting` leaves out."""
    flat: dict[str, Any] = {}

    def visit(prefix: str, value: Any) -> None:
        if is_ignored_setting(prefix):
            return
        if isinstance(value, Mapping):  # an empty mapping sets nothing
            for key in value:
                visit(f"{prefix}.{key}", value[key])
        else:
            flat[prefix] = _canonical(value)

    for key, value in settings.items():
        visit(str(key), value)
    return dict(sorted(flat.items()))


@dataclasses.dataclass(frozen=True, order=True)
class GroupKey:
    """What makes runs the same experiment (see the module docstring)."""

    benchmark: str
    task: str
    dataset: str
    config: str
    estimator: str
    settings: tuple[tuple[str, Any], ...] = ()
    device: str | None = None

    @property
    def settings_dict(self) -> dict[str, Any]:
        return dict(self.settings)

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in ("benchmark", "task", "dataset", "config", "estimator")}
        out["settings"] = self.settings_dict
        if self.device is not None:
            out["device"] = self.device
        return out

    def label(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.settings)
        return f"{self.benchmark}/{self.task}/{self.dataset}/{self.config}/{self.estimator}" + (
            f" [{settings}]" if settings else ""
        )


def _sort_token(value: Any) -> tuple:
    if isinstance(value, bool) or value is None:
        return (0, str(value))
    if isinstance(value, (int, float)):
        return (1, float(value))
    return (2, str(value))


def group_key(record: ResultRecord, *, include_device: bool = True) -> GroupKey:
    """The `GroupKey` of one record."""
    return GroupKey(
        benchmark=record.benchmark,
        task=record.task,
        dataset=record.dataset,
        config=record.config,
        estimator=record.estimator,
        settings=tuple(flatten_settings(record.settings).items()),
        device=record.device if include_device else None,
    )


@dataclasses.dataclass(frozen=True)
class MetricStats:
    """Mean, sample std (ddof=1, None for n < 2) and n over finite values; raw values in seed order."""

    mean: float
    std: float | None
    n: int
    n_nonfinite: int = 0
    values: tuple[float, ...] = ()
    seeds: tuple[int, ...] = ()

    @classmethod
    def from_values(cls, values: Sequence[float], seeds: Sequence[int] = ()) -> MetricStats:
        finite = [float(v) for v in values if math.isfinite(float(v))]
        n = len(finite)
        mean = math.fsum(finite) / n if n else math.nan
        std = statistics.stdev(finite) if n >= 2 else None
        return cls(mean, std, n, len(values) - n, tuple(float(v) for v in values), tuple(seeds))


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    """One aggregated row: the key, the seeds, and per-metric statistics."""

    key: GroupKey
    seeds: tuple[int, ...]
    metrics: dict[str, MetricStats]
    sources: tuple[str, ...]  # "file:line" of every record used
    git_commits: tuple[str, ...] = ()
    partial: int = 0  # runs from invocations that did not complete
    not_ok: tuple[str, ...] = ()  # the statuses of runs that diverged or failed

    @property
    def n(self) -> int:
        return len(self.seeds)


def _timestamp_order(item: tuple[int, LoadedRecord]) -> tuple:
    index, loaded = item
    return (loaded.record.time, index)


def summarize(
    records: Sequence[LoadedRecord | ResultRecord],
    *,
    include_device: bool = True,
    partial_runs: Iterable[str] = (),
) -> tuple[list[GroupSummary], list[LoadIssue]]:
    """Groups records (see the module docstring) and aggregates every metric over seeds.

    Returns:
      ``(summaries, notes)``: one `GroupSummary` per group, sorted by key, and a note for every
      record superseded by a later run of the same seed.
    """
    loaded = [r if isinstance(r, LoadedRecord) else LoadedRecord(r, "<memory>", i + 1) for i, r in enumerate(records)]
    partial_ids = frozenset(partial_runs)
    groups: dict[GroupKey, dict[int, tuple[int, LoadedRecord]]] = {}
    notes: list[LoadIssue] = []
    for index, item in enumerate(loaded):
        key = group_key(item.record, include_device=include_device)
        by_seed = groups.setdefault(key, {})
        seed = item.record.seed
        if seed in by_seed:
            kept, dropped = sorted([by_seed[seed], (index, item)], key=_timestamp_order)[::-1]
            by_seed[seed] = kept
            notes.append(
                LoadIssue(
                    dropped[1].path,
                    dropped[1].line,
                    f"seed {seed} of {key.label()} was run again ({kept[1].path}:{kept[1].line}, "
                    f"{kept[1].record.timestamp}); the older run is not counted",
                )
            )
        else:
            by_seed[seed] = (index, item)
    notes += _split_notes(groups)
    summaries = []
    for key in sorted(
        groups,
        key=lambda k: (
            k.benchmark,
            k.task,
            k.dataset,
            k.config,
            k.estimator,
            tuple((n, _sort_token(v)) for n, v in k.settings),
            str(k.device),
        ),
    ):
        runs = [groups[key][seed][1] for seed in sorted(groups[key])]
        seeds = tuple(r.record.seed for r in runs)
        names: list[str] = []
        for r in runs:
            names += [m for m in r.record.metrics if m not in names]
        metrics: dict[str, MetricStats] = {}
        for name in names:  # a run that diverged or failed counts as a non-finite value of every metric
            pairs = [
                (r.record.metrics.get(name, math.nan) if r.record.status == "ok" else math.nan, r.record.seed)
                for r in runs
                if name in r.record.metrics or r.record.status != "ok"
            ]
            metrics[name] = MetricStats.from_values([p[0] for p in pairs], [p[1] for p in pairs])
        metrics["wall_time_s"] = MetricStats.from_values([r.record.wall_time_s for r in runs], seeds)
        for measure in dict.fromkeys(r.record.memory.measure for r in runs if r.record.memory is not None):
            memory = [(r.record.memory.bytes, r.record.seed) for r in runs if r.record.memory is not None]
            metrics[memory_metric(measure)] = MetricStats.from_values(
                [m for m, _ in memory], [seed for _, seed in memory]
            )
        commits = tuple(sorted({r.record.provenance.git_commit for r in runs if r.record.provenance.git_commit}))
        partial = sum(1 for r in runs if r.record.run_id is not None and r.record.run_id in partial_ids)
        summaries.append(
            GroupSummary(
                key,
                seeds,
                metrics,
                tuple(f"{r.path}:{r.line}" for r in runs),
                commits,
                partial,
                tuple(r.record.status for r in runs if r.record.status != "ok"),
            )
        )
    return summaries, notes


def _split_notes(groups: Mapping[GroupKey, Mapping[int, tuple[int, LoadedRecord]]]) -> list[LoadIssue]:
    """Notes for estimators whose runs fell into several single-seed groups differing only in settings."""
    families: dict[tuple, list[GroupKey]] = {}
    for key in groups:
        families.setdefault((key.benchmark, key.task, key.dataset, key.config, key.estimator, key.device), []).append(
            key
        )
    notes = []
    for family in families.values():
        if len(family) < 2 or any(len(groups[k]) != 1 for k in family):
            continue
        seeds = [next(iter(groups[k])) for k in family]
        if len(set(seeds)) != len(seeds):
            continue
        dicts = [k.settings_dict for k in family]
        names = sorted({n for d in dicts for n in d})
        differing = [n for n in names if len({repr(d.get(n, "<absent>")) for d in dicts}) > 1]
        first = groups[family[0]][seeds[0]][1]
        notes.append(
            LoadIssue(
                first.path,
                first.line,
                (
                    f"the {len(family)} runs (seeds {sorted(seeds)}) of {family[0].estimator} on "
                    f"{family[0].benchmark}/{family[0].task}/{family[0].dataset}/{family[0].config} were not merged: they "
                    f"differ in settings {differing}; if these are per-run outputs, record them as metrics instead"
                ),
            )
        )
    return notes


def aggregate(
    results_dir: str | os.PathLike,
    *,
    include_device: bool = True,
    warn: bool = True,
    benchmarks: Iterable[Benchmark] = (),
) -> tuple[list[GroupSummary], list[LoadIssue]]:
    """`load_results` then `summarize`; returns the summaries and all issues and notes."""
    loaded = load_results(results_dir, warn=warn, benchmarks=benchmarks)
    summaries, notes = summarize(loaded.records, include_device=include_device, partial_runs=loaded.partial_runs)
    if warn:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    return summaries, list(loaded.issues) + notes


# ------------------------------------------------------------------------------------------ best rows
def metric_direction(name: str) -> str | None:
    """``"higher"``, ``"lower"`` or ``None``: which way a metric is better (table in the module doc)."""
    words = set(w for w in re.split(r"[^a-z0-9]+", name.lower()) if w)
    if words & _SPREAD_WORDS:
        return None
    if words & _LOWER_WORDS:
        return "lower"
    if words & _HIGHER_WORDS:
        return "higher"
    return None


def _is_cost_metric(name: str) -> bool:
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    return bool(words & {"bytes", "memory", "mem", "mib", "gib", "time", "seconds", "latency", "wall"})


def comparison_key(key: GroupKey, metric: str | None = None) -> tuple:
    """Rows with equal comparison keys compete for "best": same benchmark, task, data set, config, device and
    problem settings (`is_problem_setting`; each benchmark declares them in its records). A memory
    metric also needs the same memory measure."""
    del metric
    problem = tuple((name, value) for name, value in key.settings if is_problem_setting(name))
    return (key.benchmark, key.task, key.dataset, key.config, key.device, problem)


def competes(key: GroupKey, yardsticks: Mapping[str, Iterable[str]] | None = None) -> bool:
    """Whether an entry can be marked best: its estimator is not one of the yard sticks its benchmark
    declares (``yardsticks``: benchmark name → estimator names) and it has no ``baseline`` setting."""
    declared = (yardsticks or {}).get(key.benchmark, ())
    return key.estimator not in declared and not any(
        name == "baseline" or name.startswith("baseline.") for name, _ in key.settings
    )


def best_entries(
    summaries: Sequence[GroupSummary],
    yardsticks: Mapping[str, Iterable[str]] | None = None,
    directions: Mapping[tuple[str, str], str] | None = None,
) -> set[tuple[GroupKey, str]]:
    """``{(key, metric)}`` of the best cells: per comparison group and metric with a known direction
    (``directions[(benchmark, metric)]`` as declared, else `metric_direction`), the entries with the
    best finite mean (ties all marked), only where at least two entries compete (see `competes`
    and its ``yardsticks``) and not all of them are equal."""
    best: set[tuple[GroupKey, str]] = set()
    pools: dict[tuple, list[tuple[GroupKey, float]]] = {}
    for summary in summaries:
        if not competes(summary.key, yardsticks):
            continue
        for name, stats in summary.metrics.items():
            direction = (directions or {}).get((summary.key.benchmark, name)) or metric_direction(name)
            if direction is None or not math.isfinite(stats.mean):
                continue
            pool: tuple[Any, ...] = (comparison_key(summary.key, name), name, direction)
            if name in _NOT_COMPARABLE:
                continue  # a whole process's high-water mark: rises in run order, never "best"
            pools.setdefault(pool, []).append((summary.key, stats.mean))
    for (_, name, direction, *_), entries in pools.items():
        if len(entries) < 2 or len({v for _, v in entries}) == 1:
            continue
        target = max(v for _, v in entries) if direction == "higher" else min(v for _, v in entries)
        best |= {(key, name) for key, value in entries if value == target}
    return best


# ---------------------------------------------------------------------------------- optional: pandas
def require(module: str):
    """Imports an optional dependency of the leaderboard, or raises an ImportError saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"fg2u.leaderboard needs {module!r} for this; install the extra with "
            f'`pip install "fg2u[leaderboard]"` (it brings pandas and matplotlib)'
        ) from error


def to_dataframe(summaries: Sequence[GroupSummary]):
    """A long ``pandas.DataFrame``: one row per (group, metric) with mean, std, n, n_nonfinite.

    Columns: benchmark, task, dataset, config, estimator, device, settings (JSON text), seeds, metric,
    direction, mean, std, n, n_nonfinite. Needs the ``leaderboard`` extra (pandas).
    """
    pd = require("pandas")
    rows = []
    for summary in summaries:
        key = summary.key
        for name, stats in summary.metrics.items():
            rows.append(
                {
                    "benchmark": key.benchmark,
                    "task": key.task,
                    "dataset": key.dataset,
                    "config": key.config,
                    "estimator": key.estimator,
                    "device": key.device,
                    "settings": json.dumps(key.settings_dict, sort_keys=True),
                    "seeds": list(summary.seeds),
                    "metric": name,
                    "direction": metric_direction(name),
                    "mean": stats.mean,
                    "std": math.nan if stats.std is None else stats.std,
                    "n": stats.n,
                    "n_nonfinite": stats.n_nonfinite,
                }
            )
    return pd.DataFrame(rows)
