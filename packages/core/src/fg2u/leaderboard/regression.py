"""CI regression tracking: fresh smoke records against committed baselines (``results/baselines/``).

Baselines
---------
``results/baselines/<benchmark>.jsonl`` holds one JSON object per group (the :class:`GroupKey` of
:mod:`fg2u.leaderboard.aggregate` *without* the device, so a baseline made on one machine applies on
another), with, per metric, the mean, the sample std (ddof = 1, ``null`` for one seed), ``n``, the raw
values and their seeds, across the seeds of the run that made the baseline, plus where it was made
(commit, device, versions, time). They are written only by ``--update-baselines``.

Which metrics are checked
-------------------------
:func:`metric_kind` sorts every metric:

* ``"quality"`` — a known direction that is not memory or time (the direction a benchmark declares for
  its headline metrics, :class:`fg2u.benchmarks.Metric`; for other metrics the name's words,
  :func:`fg2u.leaderboard.aggregate.metric_direction`): accuracy-like may not fall, error/loss-like may not rise, by more than
  ``band = max(K_SIGMA · std_baseline, QUALITY_REL_FLOOR · |mean_baseline|, QUALITY_ABS_FLOOR)``.
  ``K_SIGMA = 3``: the fresh value is a mean over seeds, its distance to the baseline mean has a standard
  deviation of at most ``std · sqrt(1/n_b + 1/n_f) ≤ std`` (for ``n ≥ 2``), so 3 std is ≥ 3 of those
  standard deviations; the floors cover metrics that do not vary with the seed (``std = 0``: deterministic
  estimators) and round-off between machines (1 % relative, 1e-6 absolute: float32 round-off of O(1)
  quantities).
* ``"deterministic_memory"`` — memory from compiled-memory analysis (a metric name with ``compiled`` or
  ``xla``, or ``peak_memory_bytes`` when ``settings["memory_measure"]`` mentions ``compiled``): it may not
  rise by more than ``MEMORY_REL_TOL = 1 %`` of the baseline (no seed noise to allow for; the tolerance
  absorbs small differences between XLA builds).
* ``"memory"`` (other memory measures, e.g. peak RSS), ``"time"`` and ``"unknown"`` are shown but never
  fail the check: they depend on the machine and its load.

A metric that is finite in the baseline and non-finite in any fresh run is a regression. A fresh value
that is better than the baseline beyond the band is reported as ``improved`` (consider
``--update-baselines``).

Statuses and exit code
----------------------
``ok``, ``improved``, ``REGRESSION``, ``MISSING`` (the benchmark ran but a baseline group or metric is
absent from the fresh records), ``not run`` (no fresh record of that benchmark at all, e.g. its package
is not installed: benchmarks are found through the ``fg2u.benchmarks`` entry points,
:func:`fg2u.benchmarks.discover`), ``new`` (no baseline yet), ``info`` (metric not checked). The exit code is 1 when there
is a ``REGRESSION`` or ``MISSING`` row, a benchmark command failed, a baseline line is malformed, or no
baseline exists at all; otherwise 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from fg2u.benchmarks import Benchmark, discover
from fg2u.leaderboard.aggregate import (
    GroupKey,
    GroupSummary,
    LoadIssue,
    MetricStats,
    is_problem_setting,
    load_results,
    metric_direction,
    summarize,
)
from fg2u.experiment.provenance import code_commit, package_versions

__all__ = [
    "K_SIGMA",
    "QUALITY_REL_FLOOR",
    "QUALITY_ABS_FLOOR",
    "MEMORY_REL_TOL",
    "BASELINE_FORMAT",
    "Baseline",
    "Comparison",
    "metric_kind",
    "band",
    "make_baselines",
    "write_baselines",
    "load_baselines",
    "compare",
    "format_table",
    "benchmark_commands",
    "run_benchmarks",
    "main",
]

K_SIGMA = 3.0
QUALITY_REL_FLOOR = 0.01
QUALITY_ABS_FLOOR = 1e-6
MEMORY_REL_TOL = 0.01
BASELINE_FORMAT = 1

_GATED = ("quality", "deterministic_memory")


def _words(name: str) -> set[str]:
    return set(w for w in re.split(r"[^a-z0-9]+", name.lower()) if w)


def metric_kind(name: str, settings: Mapping[str, Any] | None = None, direction: str | None = None) -> str:
    """``"quality"``, ``"deterministic_memory"``, ``"memory"``, ``"time"`` or ``"unknown"`` (module doc);
    ``direction`` is the declared one (a benchmark's :class:`fg2u.benchmarks.Metric`), if any."""
    words = _words(name)
    if words & {"bytes", "memory", "mem"}:
        measure = str((settings or {}).get("memory_measure", "")).lower()
        if words & {"compiled", "xla"} or (name == "peak_memory_bytes" and "compiled" in measure):
            return "deterministic_memory"
        return "memory"
    if words & {"time", "seconds", "latency", "wall", "throughput", "speedup"}:
        return "time"
    return "quality" if (direction or metric_direction(name)) is not None else "unknown"


def band(kind: str, mean: float, std: float | None) -> float:
    """Allowed worsening for a metric of ``kind`` whose baseline is ``mean`` ± ``std`` (module doc)."""
    if kind == "deterministic_memory":
        return MEMORY_REL_TOL * abs(mean)
    return max(K_SIGMA * (std or 0.0), QUALITY_REL_FLOOR * abs(mean), QUALITY_ABS_FLOOR)


# ------------------------------------------------------------------------------------------ baselines
@dataclasses.dataclass(frozen=True)
class Baseline:
    """One baseline group: its key (no device) and per-metric statistics over seeds."""

    key: GroupKey
    metrics: dict[str, MetricStats]
    seeds: tuple[int, ...]
    provenance: dict[str, Any]
    source: str = ""


def _stats_to_json(stats: MetricStats) -> dict[str, Any]:
    finite = lambda v: v if math.isfinite(v) else str(v)  # noqa: E731
    return {
        "mean": finite(stats.mean),
        "std": stats.std,
        "n": stats.n,
        "n_nonfinite": stats.n_nonfinite,
        "values": [finite(v) for v in stats.values],
        "seeds": list(stats.seeds),
    }


def _stats_from_json(data: Mapping[str, Any]) -> MetricStats:
    number = lambda v: float(v)  # noqa: E731  ("nan"/"inf" strings are read back as floats)
    std = data.get("std")
    n = data["n"]
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"'n' must be a non-negative integer, got {n!r}")
    return MetricStats(
        mean=number(data["mean"]),
        std=None if std is None else number(std),
        n=n,
        n_nonfinite=int(data.get("n_nonfinite", 0)),
        values=tuple(number(v) for v in data.get("values", ())),
        seeds=tuple(int(s) for s in data.get("seeds", ())),
    )


def make_baselines(summaries: Sequence[GroupSummary]) -> list[Baseline]:
    """Baselines from summaries made with ``include_device=False``."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    commit, dirty = code_commit()
    provenance = {"created": now, "git_commit": commit, "dirty": dirty, "versions": package_versions()}
    return [
        Baseline(
            dataclasses.replace(s.key, device=None),
            dict(s.metrics),
            s.seeds,
            {**provenance, "record_commits": list(s.git_commits)},
        )
        for s in summaries
    ]


def write_baselines(
    baselines: Sequence[Baseline], directory: str | os.PathLike, *, devices: Mapping[str, str | None] | None = None
) -> list[Path]:
    """Rewrites ``directory/<benchmark>.jsonl`` for every benchmark in ``baselines`` (others untouched)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    by_benchmark: dict[str, list[Baseline]] = {}
    for b in baselines:
        by_benchmark.setdefault(b.key.benchmark, []).append(b)
    written = []
    for benchmark, items in sorted(by_benchmark.items()):
        path = directory / f"{benchmark}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for b in items:
                line = {
                    "baseline_format": BASELINE_FORMAT,
                    **b.key.to_dict(),
                    "seeds": list(b.seeds),
                    "metrics": {name: _stats_to_json(st) for name, st in b.metrics.items()},
                    **b.provenance,
                }
                if devices and benchmark in devices:
                    line["device"] = devices[benchmark]
                f.write(json.dumps(line, sort_keys=True) + "\n")
        tmp.replace(path)
        written.append(path)
    return written


def load_baselines(directory: str | os.PathLike) -> tuple[list[Baseline], list[LoadIssue]]:
    """Every ``directory/*.jsonl`` baseline; malformed lines are issues naming file and line."""
    directory = Path(directory)
    baselines: list[Baseline] = []
    issues: list[LoadIssue] = []
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise ValueError(f"expected a JSON object, got {type(data).__name__}")
                if data.get("baseline_format") != BASELINE_FORMAT:
                    raise ValueError(f"baseline_format must be {BASELINE_FORMAT}, got {data.get('baseline_format')!r}")
                for field in ("benchmark", "task", "dataset", "config", "estimator"):
                    if not isinstance(data.get(field), str):
                        raise ValueError(f"field {field!r} missing or not a string")
                if not isinstance(data.get("settings"), dict) or not isinstance(data.get("metrics"), dict):
                    raise ValueError("fields 'settings' and 'metrics' must be objects")
                key = GroupKey(
                    data["benchmark"],
                    data["task"],
                    data["dataset"],
                    data["config"],
                    data["estimator"],
                    tuple(sorted(data["settings"].items())),
                    None,
                )
                metrics = {name: _stats_from_json(st) for name, st in data["metrics"].items()}
                provenance = {k: data[k] for k in ("created", "git_commit", "versions", "device") if k in data}
                baselines.append(Baseline(key, metrics, tuple(data.get("seeds", ())), provenance, f"{path}:{number}"))
            except (ValueError, TypeError, KeyError) as error:
                issues.append(LoadIssue(str(path), number, f"malformed baseline ({error}); skipped"))
    return baselines, issues


# ----------------------------------------------------------------------------------------- comparison
@dataclasses.dataclass(frozen=True)
class Comparison:
    """One row of the diff table."""

    status: str
    key: GroupKey
    metric: str
    kind: str
    baseline: MetricStats | None
    fresh: MetricStats | None
    band: float | None
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("REGRESSION", "MISSING")

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.fresh is None:
            return None
        return self.fresh.mean - self.baseline.mean


def _compare_metric(
    key: GroupKey, name: str, base: MetricStats | None, fresh: MetricStats | None, declared: str | None = None
) -> Comparison:
    settings = key.settings_dict
    kind = metric_kind(name, settings, declared)
    if base is None:
        return Comparison("new", key, name, kind, None, fresh, None, "no baseline for this metric")
    if fresh is None:
        status = "MISSING" if kind in _GATED else "info"
        return Comparison(status, key, name, kind, base, None, None, "metric absent from the fresh records")
    if kind not in _GATED:
        return Comparison("info", key, name, kind, base, fresh, None, f"{kind}: not checked")
    direction = declared or metric_direction(name)
    if base.n == 0:  # the baseline itself diverged: nothing to hold on to
        return Comparison("info", key, name, kind, base, fresh, None, "baseline has no finite value")
    width = band(kind, base.mean, base.std)
    if fresh.n_nonfinite or fresh.n == 0:
        return Comparison(
            "REGRESSION", key, name, kind, base, fresh, width, f"{fresh.n_nonfinite} fresh run(s) non-finite"
        )
    worse = (base.mean - fresh.mean) if direction == "higher" else (fresh.mean - base.mean)
    if worse > width:
        what = "fell" if direction == "higher" else "rose"
        return Comparison(
            "REGRESSION", key, name, kind, base, fresh, width, f"{what} by {abs(worse):.4g} > band {width:.4g}"
        )
    if -worse > width:
        return Comparison(
            "improved", key, name, kind, base, fresh, width, "better than the band: consider --update-baselines"
        )
    return Comparison("ok", key, name, kind, base, fresh, width)


def _settings_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    parts = []
    for name in sorted(set(a) | set(b)):
        if a.get(name, "<absent>") != b.get(name, "<absent>"):
            parts.append(f"{name}: {a.get(name, '<absent>')} → {b.get(name, '<absent>')}")
    return "; ".join(parts)


def compare(
    baselines: Sequence[Baseline], fresh: Sequence[GroupSummary], benchmarks: Sequence[Benchmark] = ()
) -> list[Comparison]:
    """Compares fresh summaries (``include_device=False``) with baselines, metric by metric.

    ``benchmarks``: declarations whose headline metrics' directions are used instead of the metric-name
    rule. Returns rows sorted with failures first (see the module doc for statuses).
    """
    declared = {(b.name, m.name): m.direction for b in benchmarks for m in b.metrics}
    fresh_by_key = {dataclasses.replace(s.key, device=None): s for s in fresh}
    base_by_key = {b.key: b for b in baselines}
    ran = {k.benchmark for k in fresh_by_key}
    rows: list[Comparison] = []
    for key, base in base_by_key.items():
        if key.benchmark not in ran:
            rows += [
                Comparison(
                    "not run",
                    key,
                    m,
                    metric_kind(m, key.settings_dict),
                    st,
                    None,
                    None,
                    f"no fresh record of benchmark {key.benchmark!r}",
                )
                for m, st in base.metrics.items()
            ]
            continue
        summary = fresh_by_key.get(key)
        if summary is None:
            near = [
                k
                for k in fresh_by_key
                if (k.benchmark, k.task, k.dataset, k.config, k.estimator)
                == (key.benchmark, key.task, key.dataset, key.config, key.estimator)
            ]
            hint = (
                f"; fresh run with other settings ({_settings_diff(key.settings_dict, near[0].settings_dict)})"
                if near
                else ""
            )
            for m, st in base.metrics.items():
                kind = metric_kind(m, key.settings_dict)
                rows.append(
                    Comparison(
                        "MISSING" if kind in _GATED else "info",
                        key,
                        m,
                        kind,
                        st,
                        None,
                        None,
                        "group absent from the fresh records" + hint,
                    )
                )
            continue
        for m in dict.fromkeys([*base.metrics, *summary.metrics]):
            rows.append(
                _compare_metric(key, m, base.metrics.get(m), summary.metrics.get(m), declared.get((key.benchmark, m)))
            )
    for key, summary in fresh_by_key.items():
        if key not in base_by_key:
            rows += [
                Comparison(
                    "new", key, m, metric_kind(m, key.settings_dict), None, st, None, "no baseline for this group"
                )
                for m, st in summary.metrics.items()
            ]
    order = {"REGRESSION": 0, "MISSING": 1, "improved": 2, "new": 3, "not run": 4, "ok": 5, "info": 6}
    return sorted(
        rows,
        key=lambda r: (
            order[r.status],
            r.key.benchmark,
            r.key.task,
            r.key.dataset,
            r.key.config,
            r.key.estimator,
            repr(r.key.settings),
            r.metric,
        ),
    )


def _stat_text(stats: MetricStats | None) -> str:
    if stats is None:
        return "—"
    text = f"{stats.mean:.6g}"
    if stats.std is not None:
        text += f" ± {stats.std:.2g}"
    text += f" (n={stats.n}{', ' + str(stats.n_nonfinite) + ' non-finite' if stats.n_nonfinite else ''})"
    return text


def format_table(rows: Sequence[Comparison], *, show_ok: bool = True) -> str:
    """A plain-text diff table (fixed-width columns)."""
    header = ["status", "group", "metric", "kind", "baseline", "fresh", "delta", "band", "note"]
    body = []
    for r in rows:
        if not show_ok and r.status in ("ok", "info"):
            continue
        ordered = sorted(r.key.settings, key=lambda kv: (not is_problem_setting(kv[0]), kv[0]))
        settings = ",".join(f"{k}={v}" for k, v in ordered)
        group = f"{r.key.benchmark}/{r.key.task}/{r.key.dataset}/{r.key.config}/{r.key.estimator}"
        if settings:
            group += f" [{settings if len(settings) <= 60 else settings[:57] + '...'}]"
        delta = "" if r.delta is None else f"{r.delta:+.4g}"
        width = "" if r.band is None else f"{r.band:.3g}"
        body.append(
            [r.status, group, r.metric, r.kind, _stat_text(r.baseline), _stat_text(r.fresh), delta, width, r.note]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)] if body else [len(h) for h in header]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(header), line(["-" * w for w in widths])] + [line(b) for b in body]
    return "\n".join(out)


# --------------------------------------------------------------------------------- running benchmarks
def benchmark_commands(
    out_dir: str | os.PathLike,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    repo_root: str | os.PathLike = ".",
    python: str = sys.executable,
    extra: Mapping[str, Sequence[str]] | None = None,
    benchmarks: Sequence[Benchmark] | None = None,
) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The commands of a regression run and messages about benchmarks that are skipped.

    Every benchmark (default: :func:`fg2u.benchmarks.discover`, the installed ``fg2u.benchmarks`` entry
    points) runs its declared smoke command with ``{python}``, ``{out}`` = ``<out_dir>/<name>``,
    ``{repo_root}`` and ``{seeds}`` filled in, plus ``extra[name]`` (e.g. a data flag). Benchmarks without
    a smoke command, or whose ``smoke_requires`` paths are missing, are skipped with a message; so is an
    ``extra`` entry naming no benchmark.
    """
    extra = dict(extra or {})
    out_dir = Path(out_dir)
    if benchmarks is None:
        benchmarks, issues = discover(with_issues=True)
        skipped = [f"skipping {issue}" for issue in issues]
    else:
        skipped = []
    commands: list[tuple[str, list[str]]] = []
    for bench in benchmarks:
        if bench.smoke_command is None:
            skipped.append(f"skipping benchmark {bench.name!r}: it declares no smoke command")
            continue
        missing = bench.missing_requirements(repo_root=str(repo_root))
        if missing:
            skipped.append(
                f"skipping benchmark {bench.name!r}: {', '.join(missing)} does not exist "
                "(its smoke run needs a source checkout; pass --repo-root)"
            )
            continue
        argv = cast(
            list[str],
            bench.command(python=python, out=str(out_dir / bench.name), repo_root=str(repo_root), seeds=seeds),
        )
        commands.append((bench.name, argv + list(extra.get(bench.name, ()))))
    unknown = sorted(set(extra) - {b.name for b in benchmarks})
    if unknown:
        skipped.append(
            f"--bench-args for {', '.join(map(repr, unknown))} ignored: no such benchmark is installed "
            f"(installed: {', '.join(b.name for b in benchmarks) or 'none'})"
        )
    return commands, skipped


def run_benchmarks(
    out_dir: str | os.PathLike,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    repo_root: str | os.PathLike = ".",
    timeout_s: float | None = None,
    extra: Mapping[str, Sequence[str]] | None = None,
    benchmarks: Sequence[Benchmark] | None = None,
) -> tuple[list[str], list[str]]:
    """Runs :func:`benchmark_commands` (printing each), returns ``(benchmarks run, failures)``."""
    commands, skipped = benchmark_commands(
        out_dir, seeds=seeds, repo_root=repo_root, extra=extra, benchmarks=benchmarks
    )
    for message in skipped:
        print(message, flush=True)
    ran, failures = [], []
    for name, command in commands:
        print(f"$ {shlex.join(command)}", flush=True)
        try:
            result = subprocess.run(command, cwd=repo_root, timeout=timeout_s)
            code: int | str = result.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        except OSError as error:
            code = f"cannot start: {error}"
        if code != 0:
            failures.append(f"benchmark {name!r} failed (exit {code}): {shlex.join(command)}")
        ran.append(name)
    return ran, failures


# ------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="results", help="results folder; baselines in RESULTS/baselines")
    parser.add_argument("--baselines", default=None, help="baseline folder (default: RESULTS/baselines)")
    parser.add_argument(
        "--fresh", default=None, help="compare the records already in this folder instead of running the benchmarks"
    )
    parser.add_argument(
        "--update-baselines",
        action="store_true",
        help="rewrite the baselines of every benchmark that ran from the fresh records (on purpose)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the smoke runs")
    parser.add_argument("--repo-root", default=".", help="repository root (where packages/ lies)")
    parser.add_argument("--keep", default=None, help="write fresh records here (kept) instead of a temporary folder")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed to each benchmark command")
    parser.add_argument("--quiet", action="store_true", help="leave 'ok' and 'info' rows out of the table")
    parser.add_argument(
        "--bench-args",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="extra arguments for one benchmark's smoke command, e.g. NAME='--data-dir DIR' (repeatable)",
    )


def _extra_args(items: Sequence[str]) -> dict[str, list[str]]:
    extra: dict[str, list[str]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--bench-args wants NAME=ARGS (e.g. NAME='--data-dir DIR'), got {item!r}")
        extra.setdefault(name, []).extend(shlex.split(rest))
    return extra


def run(args: argparse.Namespace) -> int:
    """The ``regression`` command; returns the exit code. A benchmark plugin that cannot be loaded is a
    failure (its baselines would otherwise pass as ``not run``)."""
    results = Path(args.results)
    baseline_dir = Path(args.baselines) if args.baselines else results / "baselines"
    benchmarks, issues = discover(with_issues=True)
    failures = [str(issue) for issue in issues]
    if args.fresh is not None:
        return _finish(Path(args.fresh), baseline_dir, args, failures, benchmarks)
    options = dict(
        seeds=args.seeds,
        repo_root=args.repo_root,
        timeout_s=args.timeout,
        extra=_extra_args(args.bench_args),
        benchmarks=benchmarks,
    )
    if args.keep:
        fresh_dir = Path(args.keep)
        fresh_dir.mkdir(parents=True, exist_ok=True)
        _, ran_failures = run_benchmarks(fresh_dir, **options)
        return _finish(fresh_dir, baseline_dir, args, failures + ran_failures, benchmarks)
    with tempfile.TemporaryDirectory(prefix="fg2u-regression-") as tmp:
        _, ran_failures = run_benchmarks(tmp, **options)
        return _finish(Path(tmp), baseline_dir, args, failures + ran_failures, benchmarks)


def _finish(
    fresh_dir: Path,
    baseline_dir: Path,
    args: argparse.Namespace,
    failures: list[str],
    benchmarks: Sequence[Benchmark] = (),
) -> int:
    loaded = load_results(fresh_dir, warn=False)
    fresh, notes = summarize(loaded.records, include_device=False)
    problems = [str(i) for i in loaded.issues] + [str(n) for n in notes]
    baselines, base_issues = load_baselines(baseline_dir)
    rows = compare(baselines, fresh, benchmarks)
    print(
        f"\nregression check: {len(fresh)} fresh group(s) from {fresh_dir}, {len(baselines)} baseline group(s) from {baseline_dir}"
    )
    print(format_table(rows, show_ok=not args.quiet))
    for p in problems:
        print(f"warning: {p}")
    if args.update_baselines:
        if failures:
            print("\n".join(failures))
            print("not updating baselines: a benchmark command or plugin failed")
            return 1
        if not fresh:
            print("not updating baselines: no fresh records")
            return 1
        devices: dict[str, str | None] = {}
        for s in summarize(loaded.records, include_device=True)[0]:
            devices.setdefault(s.key.benchmark, s.key.device)
        written = write_baselines(make_baselines(fresh), baseline_dir, devices=devices)
        for path in written:
            print(f"baselines rewritten: {path}")
        untouched = sorted({b.key.benchmark for b in baselines} - {s.key.benchmark for s in fresh})
        if untouched:
            print(f"baselines kept as they were (benchmark not run): {', '.join(untouched)}")
        return 0
    exit_code = 0
    for issue in base_issues:
        print(f"error: {issue} (fix it or regenerate with --update-baselines)")
        exit_code = 1
    if not baselines and not base_issues:
        print(f"error: no baselines in {baseline_dir}; create them on purpose with --update-baselines")
        exit_code = 1
    for failure in failures:
        print(f"error: {failure}")
        exit_code = 1
    failed = [r for r in rows if r.failed]
    counts = {
        s: sum(1 for r in rows if r.status == s)
        for s in ("REGRESSION", "MISSING", "improved", "new", "not run", "ok", "info")
    }
    print("summary: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    if failed:
        print(f"FAILED: {len(failed)} regression(s) or missing result(s) beyond the stated tolerances")
        print(
            "if the change is intended, refresh the baselines on purpose with --update-baselines "
            "(nox -s regression -- --update-baselines) and commit results/baselines/"
        )
        exit_code = 1
    elif exit_code == 0:
        print("passed: no regression beyond the noise bands")
    return exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fg2u.leaderboard.regression`` (same as ``python -m fg2u.leaderboard regression``)."""
    parser = argparse.ArgumentParser(prog="fg2u.leaderboard regression", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
