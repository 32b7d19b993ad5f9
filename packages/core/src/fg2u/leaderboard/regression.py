"""CI regression tracking: fresh smoke records against committed baselines (``results/baselines/``).

What is gated — declared, never inferred from a name
-----------------------------------------------------
Every benchmark plugin declares its metrics ([`fg2u.benchmarks.Metric`][fg2u.benchmarks.Metric]) with a ``kind``; the
gate
compares exactly those, plus the two kinds the core itself produces:

* ``"deterministic"`` — the same code and seeds give the same value up to the metric's relative
  ``tolerance`` (plus `ABS_TOL` for values near zero). Any change beyond it fails, in either direction:
  a gradient check at fixed seeds (`fg2u.experiment.runner.GRADIENT_CHECK_METRICS`, declared here in
  `GRADIENT_CHECK`: projection, cosine, norm and error ratios of each estimator against the exact
  meta-gradient on the benchmark's own smoke problem — a flipped sign gives a projection of −1, a wrong 1/b
  scale a wrong norm ratio, repeated directions a larger error ratio, an off-by-one truncation another
  projection), or compiled memory.
* a record's memory when its measure is deterministic (``xla_temp_bytes``): it may not grow by more than
  `MEMORY_REL_TOL`; a decrease is reported as ``improved``.
* ``"stochastic"`` — a metric that varies with the seed (a smoke accuracy): it may not worsen by more than
  ``t · s · √(1/n_b + 1/n_f)`` with ``s`` the sample std over the baseline's ``n_b`` seeds, ``n_f`` fresh
  seeds and ``t`` the one-sided Student quantile with ``n_b − 1`` degrees of freedom at the false-alarm rate
  `FALSE_ALARM` (0.1 % per metric when fresh and baseline runs come from the same distribution);
  with one baseline seed or zero spread the band is `STOCHASTIC_FLOOR` of the baseline mean.
* ``"info"`` and everything undeclared (times, a process's RSS) — shown, never gated.

Missing is a failure
--------------------
The check fails, with the reason, when a benchmark command fails or wrote no records (its records went to
another folder, or none were written), a baseline group or one of its seeds or gated metrics is absent
from the fresh records, a fresh run diverged or failed (status), a record file has a malformed or
unreadable line, an invocation did not complete (its run marker), a baseline line is malformed, or a
benchmark that has baselines was not run (unless left out with ``--only``). ``--update-baselines``
refuses fresh records with any of these problems or with a non-finite gated value.

Statuses
--------
``ok``, ``improved``, ``changed`` (a deterministic metric moved — fails), ``REGRESSION``, ``MISSING``,
``new`` (no baseline yet), ``info`` (not gated).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from fg2u.benchmarks import Benchmark, Metric, discover
from fg2u.experiment.provenance import code_commit, package_versions
from fg2u.experiment.records import MEASURES
from fg2u.experiment.runner import GRADIENT_CHECK_TASK_PREFIX
from fg2u.leaderboard.aggregate import (
    GroupKey,
    GroupSummary,
    LoadIssue,
    MetricStats,
    is_problem_setting,
    load_results,
    memory_metric,
    summarize,
)

__all__ = [
    "FALSE_ALARM",
    "STOCHASTIC_FLOOR",
    "ABS_TOL",
    "MEMORY_REL_TOL",
    "GRADIENT_CHECK",
    "BASELINE_FORMAT",
    "Baseline",
    "Comparison",
    "gated_metrics",
    "t_quantile",
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

FALSE_ALARM = 0.001
STOCHASTIC_FLOOR = 0.02
ABS_TOL = 1e-6
MEMORY_REL_TOL = 0.01
BASELINE_FORMAT = 2

#: The gradient check's metrics (``python -m fg2u_bench_<name> --gradient-check R``), produced by the core's
#: runner for every benchmark: deterministic at fixed seeds. The tolerance covers float32 round-off between
#: CPUs (a few ulps of sums over ~10³ terms, ≈ 1e-4 relative) with a margin.
GRADIENT_CHECK: tuple[Metric, ...] = tuple(
    Metric(name, direction, "", name, kind="deterministic", headline=False, tolerance=1e-3)
    for name, direction in (
        ("grad_projection", "higher"),
        ("grad_cosine", "higher"),
        ("grad_norm_ratio", "lower"),
        ("grad_mse_ratio", "lower"),
    )
)

# One-sided Student t quantiles at 1 − FALSE_ALARM = 0.999, by degrees of freedom (beyond 30: 3.09, the normal's).
_T_999 = {1: 318.31, 2: 22.327, 3: 10.215, 4: 7.173, 5: 5.893, 6: 5.208, 7: 4.785, 8: 4.501, 9: 4.297, 10: 4.144}
_T_999.update({11: 4.025, 12: 3.930, 13: 3.852, 14: 3.787, 15: 3.733, 20: 3.552, 25: 3.450, 30: 3.385})


def t_quantile(dof: int) -> float:
    """The one-sided Student t quantile at 1 − `FALSE_ALARM` for ``dof`` ≥ 1 degrees of freedom (tabulated;
    between table rows the next smaller row's, which is the larger, more conservative quantile)."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
    if dof > 30:
        return 3.090
    return _T_999[max(d for d in _T_999 if d <= dof)]


def gated_metrics(benchmark: Benchmark | None, task: str) -> dict[str, Metric]:
    """The metrics the gate compares for records of ``task``: the benchmark's declared metrics that apply to
    the task (``kind`` not ``"info"``), and the gradient check's on ``gradient-check-*`` tasks."""
    if task.startswith(GRADIENT_CHECK_TASK_PREFIX):
        return {m.name: m for m in GRADIENT_CHECK}
    if benchmark is None:
        return {}
    return {m.name: m for m in benchmark.metrics if m.applies_to(task) and m.kind != "info"}


def _memory_names() -> dict[str, str]:
    """``memory_<measure>_bytes`` → measure, for the deterministic memory measures."""
    return {memory_metric(m): m for m, (deterministic, _, _) in MEASURES.items() if deterministic}


def band(metric: Metric, base: MetricStats, n_fresh: int) -> float:
    """The allowed change of ``metric`` whose baseline is ``base`` (module docstring)."""
    if metric.kind == "deterministic":
        return metric.tolerance * abs(base.mean) + ABS_TOL
    floor = STOCHASTIC_FLOOR * abs(base.mean) + ABS_TOL
    if base.std is None or base.n < 2:
        return floor
    spread = t_quantile(base.n - 1) * base.std * math.sqrt(1.0 / base.n + 1.0 / max(1, n_fresh))
    return max(spread, floor)


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
    finite = lambda v: v if math.isfinite(v) else None  # noqa: E731
    return {
        "mean": finite(stats.mean),
        "std": stats.std,
        "n": stats.n,
        "values": [finite(v) for v in stats.values],
        "seeds": list(stats.seeds),
    }


def _stats_from_json(data: Mapping[str, Any]) -> MetricStats:
    values = [math.nan if v is None else float(v) for v in data.get("values", ())]
    seeds = [int(s) for s in data.get("seeds", ())]
    stats = MetricStats.from_values(values, seeds)
    if stats.n != data["n"]:
        raise ValueError(f"'n' is {data['n']!r} but {stats.n} of the values are finite")
    return stats


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
                f.write(json.dumps(line, sort_keys=True, allow_nan=False) + "\n")
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
                    raise ValueError(
                        f"baseline_format must be {BASELINE_FORMAT}, got {data.get('baseline_format')!r} "
                        "(regenerate with --update-baselines)"
                    )
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
                provenance = {k: data[k] for k in ("created", "git_commit", "dirty", "versions", "device") if k in data}
                baselines.append(Baseline(key, metrics, tuple(data.get("seeds", ())), provenance, f"{path}:{number}"))
            except (ValueError, TypeError, KeyError) as error:
                issues.append(LoadIssue(str(path), number, f"malformed baseline ({error})"))
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
        return self.status in ("REGRESSION", "MISSING", "changed")

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.fresh is None:
            return None
        return self.fresh.mean - self.baseline.mean


def _compare_metric(key: GroupKey, name: str, metric: Metric, base: MetricStats, fresh: MetricStats) -> Comparison:
    if base.n == 0:
        return Comparison("MISSING", key, name, metric.kind, base, fresh, None, "the baseline has no finite value")
    if fresh.n_nonfinite or fresh.n == 0:
        return Comparison(
            "REGRESSION", key, name, metric.kind, base, fresh, None, f"{fresh.n_nonfinite} fresh run(s) non-finite"
        )
    width = band(metric, base, fresh.n)
    change = fresh.mean - base.mean
    if metric.kind == "deterministic" and name in _memory_names():
        if change > width:
            return Comparison("REGRESSION", key, name, "memory", base, fresh, width, f"grew by {change:.6g} bytes")
        if -change > width:
            return Comparison(
                "improved", key, name, "memory", base, fresh, width, "smaller: consider --update-baselines"
            )
        return Comparison("ok", key, name, "memory", base, fresh, width)
    if metric.kind == "deterministic":
        if abs(change) > width:
            return Comparison(
                "changed",
                key,
                name,
                metric.kind,
                base,
                fresh,
                width,
                f"moved by {change:+.6g} > tolerance {width:.3g} (deterministic: a code change, or on purpose: "
                "--update-baselines)",
            )
        return Comparison("ok", key, name, metric.kind, base, fresh, width)
    worse = (base.mean - fresh.mean) if metric.direction == "higher" else (fresh.mean - base.mean)
    if worse > width:
        what = "fell" if metric.direction == "higher" else "rose"
        return Comparison(
            "REGRESSION", key, name, metric.kind, base, fresh, width, f"{what} by {abs(worse):.4g} > band {width:.4g}"
        )
    if -worse > width:
        return Comparison("improved", key, name, metric.kind, base, fresh, width, "better than the band")
    return Comparison("ok", key, name, metric.kind, base, fresh, width)


def _group_metrics(bench: Benchmark | None, key: GroupKey, names: Sequence[str]) -> dict[str, Metric]:
    """The gated metrics of a group: declared ones and its deterministic memory."""
    gated = gated_metrics(bench, key.task)
    for name in names:
        if name in _memory_names():
            gated[name] = Metric(name, "lower", "bytes", name, kind="deterministic", tolerance=MEMORY_REL_TOL)
    return gated


def compare(
    baselines: Sequence[Baseline],
    fresh: Sequence[GroupSummary],
    benchmarks: Sequence[Benchmark] = (),
    *,
    ran: Sequence[str] | None = None,
) -> list[Comparison]:
    """Compares fresh summaries (``include_device=False``) with baselines, metric by metric (module doc).

    ``ran``: the benchmarks whose records were expected; a baseline of another benchmark is skipped (``--only``),
    a baseline of one that ran but has no fresh group is MISSING. Returns rows, failures first."""
    declared = {b.name: b for b in benchmarks}
    fresh_by_key = {dataclasses.replace(s.key, device=None): s for s in fresh}
    base_by_key = {b.key: b for b in baselines}
    expected = set(ran) if ran is not None else {k.benchmark for k in base_by_key} | {k.benchmark for k in fresh_by_key}
    rows: list[Comparison] = []
    for key, base in base_by_key.items():
        if key.benchmark not in expected:
            continue
        summary = fresh_by_key.get(key)
        gated = _group_metrics(declared.get(key.benchmark), key, list(base.metrics))
        if summary is None:
            rows.append(
                Comparison("MISSING", key, "(group)", "", None, None, None, "group absent from the fresh records")
            )
            continue
        missing_seeds = sorted(set(base.seeds) - set(summary.seeds))
        if missing_seeds:
            rows.append(Comparison("MISSING", key, "(seeds)", "", None, None, None, f"seed(s) {missing_seeds} not run"))
        if summary.not_ok:
            rows.append(
                Comparison("REGRESSION", key, "(status)", "", None, None, None, f"run(s) {list(summary.not_ok)}")
            )
        for name in dict.fromkeys([*base.metrics, *summary.metrics]):
            metric = gated.get(name)
            b, f = base.metrics.get(name), summary.metrics.get(name)
            if metric is None:
                rows.append(Comparison("info", key, name, "info", b, f, None, "not gated"))
            elif b is None:
                rows.append(Comparison("new", key, name, metric.kind, None, f, None, "no baseline for this metric"))
            elif f is None:
                rows.append(
                    Comparison("MISSING", key, name, metric.kind, b, None, None, "absent from the fresh records")
                )
            else:
                rows.append(_compare_metric(key, name, metric, b, f))
    for key in fresh_by_key:
        if key not in base_by_key:
            rows.append(Comparison("new", key, "(group)", "", None, None, None, "no baseline for this group"))
    order = {"REGRESSION": 0, "MISSING": 1, "changed": 2, "improved": 3, "new": 4, "ok": 5, "info": 6}
    return sorted(rows, key=lambda r: (order[r.status], r.key.label(), r.metric))


def _stat_text(stats: MetricStats | None) -> str:
    if stats is None:
        return "—"
    text = f"{stats.mean:.6g}"
    if stats.std is not None:
        text += f" ± {stats.std:.2g}"
    return text + f" (n={stats.n}{', ' + str(stats.n_nonfinite) + ' non-finite' if stats.n_nonfinite else ''})"


def format_table(rows: Sequence[Comparison], *, show_ok: bool = True) -> str:
    """A plain-text diff table (fixed-width columns)."""
    header = ["status", "group", "metric", "kind", "baseline", "fresh", "delta", "band", "note"]
    body = []
    for r in rows:
        if not show_ok and r.status in ("ok", "info"):
            continue
        problem = ",".join(f"{k}={v}" for k, v in r.key.settings if is_problem_setting(k))
        group = f"{r.key.benchmark}/{r.key.task}/{r.key.dataset}/{r.key.config}/{r.key.estimator}"
        if problem:
            group += f" [{problem if len(problem) <= 50 else problem[:47] + '...'}]"
        delta = "" if r.delta is None else f"{r.delta:+.4g}"
        width = "" if r.band is None else f"{r.band:.3g}"
        body.append(
            [r.status, group, r.metric, r.kind, _stat_text(r.baseline), _stat_text(r.fresh), delta, width, r.note]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)] if body else [len(h) for h in header]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(b) for b in body])


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
    """The commands of a regression run and the problems that keep a benchmark from running.

    Every benchmark (default: [`fg2u.benchmarks.discover`][fg2u.benchmarks.discover]) runs its declared smoke command
    with ``{python}``, ``{out}`` = ``<out_dir>/<name>``, ``{repo_root}`` and ``{seeds}`` filled in, plus
    ``extra[name]``. A benchmark without a smoke command is not listed; one whose ``smoke_requires`` paths
    are missing, and an ``extra`` entry naming no benchmark, are problems (the check fails on them).
    """
    extra = dict(extra or {})
    out_dir = Path(out_dir)
    problems: list[str] = []
    if benchmarks is None:
        benchmarks, issues = discover(with_issues=True)
        problems += [str(issue) for issue in issues]
    commands: list[tuple[str, list[str]]] = []
    for bench in benchmarks:
        if bench.smoke_command is None:
            continue
        missing = bench.missing_requirements(repo_root=str(repo_root))
        if missing:
            problems.append(
                f"benchmark {bench.name!r}: {', '.join(missing)} does not exist (its smoke run needs a source "
                "checkout; pass --repo-root, or leave it out with --only)"
            )
            continue
        argv = cast(
            list[str],
            bench.command(python=python, out=str(out_dir / bench.name), repo_root=str(repo_root), seeds=seeds),
        )
        commands.append((bench.name, argv + list(extra.get(bench.name, ()))))
    unknown = sorted(set(extra) - {b.name for b in benchmarks})
    if unknown:
        problems.append(
            f"--bench-args for {', '.join(map(repr, unknown))}: no such benchmark is installed "
            f"(installed: {', '.join(b.name for b in benchmarks) or 'none'})"
        )
    return commands, problems


def run_benchmarks(
    out_dir: str | os.PathLike,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    repo_root: str | os.PathLike = ".",
    timeout_s: float | None = None,
    extra: Mapping[str, Sequence[str]] | None = None,
    benchmarks: Sequence[Benchmark] | None = None,
) -> tuple[list[str], list[str]]:
    """Runs `benchmark_commands` (printing each); returns ``(benchmarks run, failures)``. A benchmark that
    exits 0 but leaves no record in its folder is a failure (its records went elsewhere, or none were written)."""
    commands, failures = benchmark_commands(
        out_dir, seeds=seeds, repo_root=repo_root, extra=extra, benchmarks=benchmarks
    )
    ran = []
    for name, command in commands:
        print(f"$ {shlex.join(command)}", flush=True)
        try:
            result = subprocess.run(command, cwd=repo_root, timeout=timeout_s)
            code: int | str = result.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        except OSError as error:
            code = f"cannot start: {error}"
        folder = Path(out_dir) / name
        if code != 0:
            failures.append(f"benchmark {name!r} failed (exit {code}): {shlex.join(command)}")
        elif not any(folder.rglob("*.jsonl")):
            failures.append(
                f"benchmark {name!r} exited 0 but wrote no records into {folder} (did --out point elsewhere?)"
            )
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
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="run and check only these benchmarks")
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
    """The ``regression`` command; returns the exit code."""
    results = Path(args.results)
    baseline_dir = Path(args.baselines) if args.baselines else results / "baselines"
    benchmarks, issues = discover(with_issues=True)
    failures = [str(issue) for issue in issues]
    if args.only:
        unknown = sorted(set(args.only) - {b.name for b in benchmarks})
        if unknown:
            print(f"error: --only {' '.join(unknown)}: no such benchmark (installed: {[b.name for b in benchmarks]})")
            return 2
    selected = [b for b in benchmarks if args.only is None or b.name in args.only]
    if args.fresh is not None:  # the records already there: every selected benchmark with a smoke run, or records
        present = {p.relative_to(args.fresh).parts[0] for p in Path(args.fresh).rglob("*.jsonl")}
        ran = [b.name for b in selected if b.smoke_command is not None or b.name in present]
        ran += sorted(present - set(ran) - {b.name for b in benchmarks})
        return _finish(Path(args.fresh), baseline_dir, args, failures, benchmarks, ran)
    options = dict(
        seeds=args.seeds,
        repo_root=args.repo_root,
        timeout_s=args.timeout,
        extra=_extra_args(args.bench_args),
        benchmarks=selected,
    )
    if args.keep:
        fresh_dir = Path(args.keep)
        fresh_dir.mkdir(parents=True, exist_ok=True)
        ran, ran_failures = run_benchmarks(fresh_dir, **options)
        return _finish(fresh_dir, baseline_dir, args, failures + ran_failures, benchmarks, ran)
    with tempfile.TemporaryDirectory(prefix="fg2u-regression-") as tmp:
        ran, ran_failures = run_benchmarks(tmp, **options)
        return _finish(Path(tmp), baseline_dir, args, failures + ran_failures, benchmarks, ran)


def _finish(
    fresh_dir: Path,
    baseline_dir: Path,
    args: argparse.Namespace,
    failures: list[str],
    benchmarks: Sequence[Benchmark],
    ran: Sequence[str],
) -> int:
    loaded = load_results(fresh_dir, warn=False, benchmarks=benchmarks)
    fresh, _notes = summarize(loaded.records, include_device=False, partial_runs=loaded.partial_runs)
    problems = [f"{issue}" for issue in loaded.issues]
    problems += [
        f"{s.key.label()}: {s.partial} run(s) from an invocation that did not complete" for s in fresh if s.partial
    ]
    baselines, base_issues = load_baselines(baseline_dir)
    rows = compare(baselines, fresh, benchmarks, ran=ran)
    print(f"\nregression check: {len(fresh)} fresh group(s) from {fresh_dir}, {len(baselines)} baseline group(s)")
    print(format_table(rows, show_ok=not args.quiet))
    if args.update_baselines:
        return _update(baselines, fresh, loaded, baseline_dir, failures + problems, benchmarks)
    exit_code = 0
    for issue in base_issues:
        print(f"error: {issue} (fix it or regenerate with --update-baselines)")
        exit_code = 1
    if not baselines and not base_issues:
        print(f"error: no baselines in {baseline_dir}; create them on purpose with --update-baselines")
        exit_code = 1
    for problem in failures + problems:
        print(f"error: {problem}")
        exit_code = 1
    for name in sorted({b.key.benchmark for b in baselines} - set(ran)):
        if args.only is None or name in args.only:
            print(f"error: benchmark {name!r} has baselines but was not run (not installed? leave it out with --only)")
            exit_code = 1
    failed = [r for r in rows if r.failed]
    counts = {
        s: sum(1 for r in rows if r.status == s)
        for s in ("REGRESSION", "MISSING", "changed", "improved", "new", "ok", "info")
    }
    print("summary: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    if failed:
        names = sorted({f"{r.key.benchmark}:{r.metric}" for r in failed})
        print(f"FAILED: {len(failed)} regression(s), change(s) or missing result(s): {', '.join(names)}")
        print(
            "if the change is intended, refresh the baselines on purpose with --update-baselines "
            "(nox -s regression -- --update-baselines) and commit results/baselines/"
        )
        exit_code = 1
    elif exit_code == 0:
        print("passed: no regression beyond the stated bands and tolerances")
    return exit_code


def _update(
    baselines: Sequence[Baseline],
    fresh: Sequence[GroupSummary],
    loaded: Any,
    baseline_dir: Path,
    problems: Sequence[str],
    benchmarks: Sequence[Benchmark],
) -> int:
    refusals = list(problems)
    declared = {b.name: b for b in benchmarks}
    for s in fresh:
        if s.not_ok:
            refusals.append(f"{s.key.label()}: run(s) {list(s.not_ok)}")
        for name in _group_metrics(declared.get(s.key.benchmark), s.key, list(s.metrics)):
            stats = s.metrics.get(name)
            if stats is not None and (stats.n_nonfinite or stats.n == 0):
                refusals.append(f"{s.key.label()}: {name} is non-finite in {stats.n_nonfinite} run(s)")
    if not fresh:
        refusals.append("no fresh records")
    if refusals:
        for refusal in refusals:
            print(f"error: {refusal}")
        print("not updating baselines: the fresh records are partial, non-finite or a command failed")
        return 1
    devices: dict[str, str | None] = {}
    for s in summarize(loaded.records, include_device=True)[0]:
        devices.setdefault(s.key.benchmark, s.key.device)
    for path in write_baselines(make_baselines(fresh), baseline_dir, devices=devices):
        print(f"baselines rewritten: {path}")
    untouched = sorted({b.key.benchmark for b in baselines} - {s.key.benchmark for s in fresh})
    if untouched:
        print(f"baselines kept as they were (benchmark not run): {', '.join(untouched)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fg2u.leaderboard.regression`` (same as ``python -m fg2u.leaderboard regression``)."""
    parser = argparse.ArgumentParser(prog="fg2u.leaderboard regression", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
