"""Regression comparison: planted regressions are caught, noise inside the band passes, baselines round trip."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import sys
import textwrap

import pytest

from fg2u.benchmarks import Benchmark, DiscoveryIssue, Metric
from fg2u.leaderboard import regression as reg
from fg2u.leaderboard.__main__ import main as cli
from fg2u.leaderboard.aggregate import load_results, summarize
from fg2u.records import append_records, make_record

_TEMPLATE = make_record(
    benchmark="vision",
    task="condensation",
    dataset="digits",
    config="smoke",
    estimator="FG2U",
    settings={},
    seed=0,
    metrics={"test_accuracy": 0.0},
    wall_time_s=1.0,
    device="cpu: test",
)
ACC = [0.60, 0.62, 0.64]  # baseline accuracies over seeds 0, 1, 2: mean 0.62, sample std 0.02
MEM = 2.0**20  # compiled memory of the baseline, bytes (deterministic: same for every seed)


def rec(seed, metrics, estimator="FG2U", benchmark="vision", settings=None, **fields):
    return dataclasses.replace(
        _TEMPLATE,
        benchmark=benchmark,
        estimator=estimator,
        seed=seed,
        metrics=metrics,
        settings=settings or {"ipc": 1},
        **fields,
    )


def write_run(folder, accuracies=ACC, memory=MEM, wall=1.0, extra=()):
    records = [
        rec(s, {"test_accuracy": a, "compiled_temp_bytes": memory}, wall_time_s=wall * (s + 1))
        for s, a in enumerate(accuracies)
    ]
    append_records(folder / "vision" / "smoke.jsonl", [*records, *extra])
    return folder


@pytest.fixture
def baseline(tmp_path):
    """results/ with baselines made on purpose from a 3-seed run."""
    results = tmp_path / "results"
    fresh = write_run(tmp_path / "first")
    assert cli(["regression", "--results", str(results), "--fresh", str(fresh), "--update-baselines"]) == 0
    return results


def check(results, fresh, *extra):
    return cli(["regression", "--results", str(results), "--fresh", str(fresh), *extra])


def comparisons(results, fresh):
    baselines, issues = reg.load_baselines(results / "baselines")
    assert issues == []
    summaries, _ = summarize(load_results(fresh, exclude_dirs=()).records, include_device=False)
    return reg.compare(baselines, summaries)


def statuses(results, fresh):
    return {(r.key.estimator, r.metric): r for r in comparisons(results, fresh)}


def test_baseline_file_stores_mean_std_n_across_seeds(baseline):
    (line,) = (baseline / "baselines" / "vision.jsonl").read_text().splitlines()
    data = json.loads(line)
    assert data["baseline_format"] == 1 and data["seeds"] == [0, 1, 2] and data["settings"] == {"ipc": 1}
    acc = data["metrics"]["test_accuracy"]
    assert acc["n"] == 3 and acc["mean"] == pytest.approx(0.62) and acc["std"] == pytest.approx(0.02)
    assert acc["values"] == ACC and acc["seeds"] == [0, 1, 2]
    assert data["metrics"]["compiled_temp_bytes"] == {**data["metrics"]["compiled_temp_bytes"], "mean": MEM, "std": 0.0}
    assert data["device"] == "cpu: test" and "created" in data and "versions" in data


def test_same_results_pass(baseline, tmp_path, capsys):
    assert check(baseline, write_run(tmp_path / "again")) == 0
    out = capsys.readouterr().out
    assert "passed" in out and "status" in out and "test_accuracy" in out


def test_planted_accuracy_regression_is_caught(baseline, tmp_path, capsys):
    # band = max(3 * 0.02, 1 % of 0.62, 1e-6) = 0.06; a drop of 0.08 is a regression
    fresh = write_run(tmp_path / "worse", [a - 0.08 for a in ACC])
    assert check(baseline, fresh) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "FAILED" in out
    row = statuses(baseline, fresh)[("FG2U", "test_accuracy")]
    assert row.status == "REGRESSION" and row.band == pytest.approx(0.06) and row.delta == pytest.approx(-0.08)


def test_accuracy_noise_inside_the_band_passes(baseline, tmp_path):
    # new seeds with the same spread, mean lower by 2 std = 0.04 < 0.06
    fresh = write_run(tmp_path / "noisy", [a - 0.04 for a in ACC])
    assert check(baseline, fresh) == 0
    assert statuses(baseline, fresh)[("FG2U", "test_accuracy")].status == "ok"


def test_accuracy_gain_beyond_the_band_is_reported_not_failed(baseline, tmp_path):
    fresh = write_run(tmp_path / "better", [a + 0.1 for a in ACC])
    assert check(baseline, fresh) == 0
    assert statuses(baseline, fresh)[("FG2U", "test_accuracy")].status == "improved"


@pytest.mark.parametrize("factor, status, code", [(1.005, "ok", 0), (0.9, "improved", 0), (1.05, "REGRESSION", 1)])
def test_compiled_memory_must_match_within_one_percent(baseline, tmp_path, factor, status, code):
    fresh = write_run(tmp_path / "mem", memory=MEM * factor)
    assert check(baseline, fresh) == code
    row = statuses(baseline, fresh)[("FG2U", "compiled_temp_bytes")]
    assert row.status == status and row.kind == "deterministic_memory" and row.band == pytest.approx(0.01 * MEM)


def test_wall_time_and_rss_are_not_gated(baseline, tmp_path):
    fresh = write_run(tmp_path / "slow", wall=50.0)
    assert check(baseline, fresh) == 0
    assert statuses(baseline, fresh)[("FG2U", "wall_time_s")].status == "info"
    assert reg.metric_kind("peak_memory_bytes", {"memory_measure": "peak RSS"}) == "memory"
    assert (
        reg.metric_kind("peak_memory_bytes", {"memory_measure": "XLA compiled memory analysis"})
        == "deterministic_memory"
    )


def test_nonfinite_fresh_value_is_a_regression(baseline, tmp_path):
    fresh = write_run(tmp_path / "nan", [0.62, math.nan, 0.62])
    assert check(baseline, fresh) == 1
    assert statuses(baseline, fresh)[("FG2U", "test_accuracy")].status == "REGRESSION"


def test_missing_group_fails_and_unrun_benchmark_is_reported(baseline, tmp_path, capsys):
    # the vision benchmark ran, but without the baseline's FG2U group (only RGU): MISSING
    fresh = tmp_path / "other"
    append_records(fresh / "vision" / "smoke.jsonl", [rec(0, {"test_accuracy": 0.5}, estimator="RGU")])
    assert check(baseline, fresh) == 1
    rows = statuses(baseline, fresh)
    assert rows[("FG2U", "test_accuracy")].status == "MISSING" and rows[("RGU", "test_accuracy")].status == "new"
    # only another benchmark ran: the vision baseline is "not run", which does not fail
    fresh = tmp_path / "pde-only"
    append_records(fresh / "pde" / "smoke.jsonl", [rec(0, {"coef_rel_error": 0.1}, benchmark="pde")])
    assert check(baseline, fresh) == 0
    assert "not run" in capsys.readouterr().out


def test_changed_settings_are_missing_with_a_hint(baseline, tmp_path):
    fresh = tmp_path / "changed"
    append_records(
        fresh / "vision" / "smoke.jsonl",
        [rec(s, {"test_accuracy": a, "compiled_temp_bytes": MEM}, settings={"ipc": 2}) for s, a in enumerate(ACC)],
    )
    assert check(baseline, fresh) == 1
    rows = {(r.key.settings_dict["ipc"], r.metric): r for r in comparisons(baseline, fresh)}
    assert rows[(1, "test_accuracy")].status == "MISSING" and "ipc: 1 → 2" in rows[(1, "test_accuracy")].note
    assert rows[(2, "test_accuracy")].status == "new"


def test_update_baselines_round_trip(tmp_path):
    fresh = write_run(
        tmp_path / "run", extra=[rec(s, {"test_accuracy": 0.7 + s / 100}, estimator="RGU") for s in range(2)]
    )
    results = tmp_path / "results"
    (results / "baselines").mkdir(parents=True)
    (results / "baselines" / "lm.jsonl").write_text("keep me\n")  # a benchmark that did not run stays untouched
    assert check(results, fresh, "--update-baselines") == 0
    assert (results / "baselines" / "lm.jsonl").read_text() == "keep me\n"
    (results / "baselines" / "lm.jsonl").unlink()
    baselines, issues = reg.load_baselines(results / "baselines")
    assert issues == []
    stats = {(b.key.estimator, m): st for b in baselines for m, st in b.metrics.items()}
    assert stats[("RGU", "test_accuracy")].mean == pytest.approx(0.705)
    assert stats[("RGU", "test_accuracy")].std == pytest.approx(statistics.stdev([0.70, 0.71]))
    assert stats[("FG2U", "compiled_temp_bytes")].n == 3
    assert check(results, fresh) == 0  # the fresh records match the baselines they made
    # a deliberate change, then a refresh on purpose: passes again
    worse = write_run(tmp_path / "worse", [a - 0.2 for a in ACC])
    assert check(results, worse) == 1
    assert check(results, worse, "--update-baselines") == 0
    assert check(results, worse) == 0


def test_malformed_or_absent_baselines_fail_clearly(tmp_path, capsys):
    results = tmp_path / "results"
    fresh = write_run(tmp_path / "run")
    assert check(results, fresh) == 1
    assert "no baselines" in capsys.readouterr().out
    (results / "baselines").mkdir(parents=True)
    (results / "baselines" / "vision.jsonl").write_text('{"baseline_format": 1, "benchmark": "vision"}\n')
    assert check(results, fresh) == 1
    assert f"{results / 'baselines' / 'vision.jsonl'}:1" in capsys.readouterr().out


def test_band_formula():
    assert reg.band("quality", 0.62, 0.02) == pytest.approx(0.06)  # 3 std
    assert reg.band("quality", 0.62, 0.0) == pytest.approx(0.0062)  # 1 % floor
    assert reg.band("quality", 0.0, None) == 1e-6  # absolute floor
    assert reg.band("deterministic_memory", 1000.0, 50.0) == pytest.approx(10.0)


_STAND_IN = textwrap.dedent("""
    import argparse, pathlib
    from fg2u.records import append_records, make_record
    p = argparse.ArgumentParser(); p.add_argument("--size"); p.add_argument("--out")
    a = p.parse_args()
    append_records(pathlib.Path(a.out) / f"{a.size}.jsonl", [make_record(
        benchmark="core", task="memory", dataset="synthetic", config=a.size, estimator=e, seed=0,
        settings={"num_steps": 8}, metrics={"compiled_temp_bytes": b}, wall_time_s=0.1)
        for e, b in (("FG2U", 1000.0), ("RGU", 8000.0))])
""")


def _plugins(script):
    """Declarations like the installed ones: a script benchmark in a source checkout and a module one."""
    core = Benchmark(
        "core",
        ("{python}", "{repo_root}/bench/core.py", "--size", "small", "--out", "{out}"),
        (Metric("compiled_temp_bytes", "lower", "bytes"),),
        ("num_steps",),
        smoke_requires=("{repo_root}/bench/core.py",),
    )
    toy = Benchmark(
        "toy",
        ("{python}", "-m", "fg2u_bench_toy", "--config", "smoke", "--seeds", "{seeds}", "--out", "{out}"),
        (Metric("test_accuracy", "higher", "%"),),
        ("dataset",),
    )
    return [core, toy]


def test_runner_runs_declared_smoke_commands(tmp_path, monkeypatch, capsys):
    """End to end with a stand-in core benchmark script, discovered through (fake) entry points."""
    repo = tmp_path / "repo"
    script = repo / "bench" / "core.py"
    core, toy = _plugins(script)
    commands, skipped = reg.benchmark_commands(
        tmp_path / "out",
        seeds=(0, 1),
        repo_root=repo,
        benchmarks=[core, toy],
        extra=reg._extra_args(["toy=--dataset digits", "nope=--x 1"]),
    )
    assert [name for name, _ in commands] == ["toy"]  # the script does not exist yet
    assert commands[0][1][1:] == [
        "-m",
        "fg2u_bench_toy",
        "--config",
        "smoke",
        "--seeds",
        "0",
        "1",
        "--out",
        str(tmp_path / "out" / "toy"),
        "--dataset",
        "digits",
    ]
    assert "skipping benchmark 'core'" in skipped[0] and "does not exist" in skipped[0]
    assert "'nope' ignored: no such benchmark" in skipped[1]
    script.parent.mkdir(parents=True)
    script.write_text(_STAND_IN)
    commands, skipped = reg.benchmark_commands(
        tmp_path / "out", repo_root=repo, benchmarks=[core], extra={"core": ["--repeats", "1"]}
    )
    assert (
        commands
        == [
            (
                "core",
                [
                    sys.executable,
                    str(script),
                    "--size",
                    "small",
                    "--out",
                    str(tmp_path / "out" / "core"),
                    "--repeats",
                    "1",
                ],
            )
        ]
        and not skipped
    )
    # the CLI discovers plugins through the entry points
    monkeypatch.setattr(reg, "discover", lambda with_issues=False: ([core], []) if with_issues else [core])
    results = tmp_path / "results"
    args = ["regression", "--results", str(results), "--repo-root", str(repo)]
    assert cli([*args, "--update-baselines"]) == 0
    out = capsys.readouterr().out
    assert "$ " in out and "core.py --size small" in out
    assert cli(args) == 0
    assert (results / "baselines" / "core.jsonl").exists()


def test_failing_benchmark_command_or_plugin_fails_the_check(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    core, _ = _plugins(repo / "bench" / "core.py")
    (repo / "bench").mkdir(parents=True)
    (repo / "bench" / "core.py").write_text("raise SystemExit(3)\n")
    ran, failures = reg.run_benchmarks(tmp_path / "out", repo_root=repo, benchmarks=[core])
    assert ran == ["core"] and "exit 3" in failures[0]
    # a plugin that cannot be loaded is a failure, not a silently skipped benchmark
    issue = DiscoveryIssue("toy = fg2u_bench_toy.plugin:BENCHMARK", "cannot be loaded (ImportError: boom)")
    monkeypatch.setattr(reg, "discover", lambda with_issues=False: ([], [issue]))
    (tmp_path / "fresh").mkdir()
    assert cli(["regression", "--results", str(tmp_path), "--fresh", str(tmp_path / "fresh")]) == 1
    assert "benchmark plugin toy = fg2u_bench_toy.plugin:BENCHMARK: cannot be loaded" in capsys.readouterr().out


def test_declared_direction_overrides_the_metric_name_rule():
    from fg2u.leaderboard.aggregate import GroupKey, MetricStats

    key = GroupKey("toy", "t", "d", "smoke", "FG2U")
    base, fresh = MetricStats.from_values([0.10, 0.10]), MetricStats.from_values([0.20, 0.20])
    # "hits" has no direction by its words: without a declaration it is only shown
    assert reg._compare_metric(key, "hits", base, fresh).status == "info"
    assert reg._compare_metric(key, "hits", base, fresh, "lower").status == "REGRESSION"
    assert reg._compare_metric(key, "hits", base, fresh, "higher").status == "improved"
    bench = Benchmark("toy", None, (Metric("hits", "lower"),), ("dataset",))
    summary = type("S", (), {"key": key, "metrics": {"hits": fresh}})()
    baseline = reg.Baseline(key, {"hits": base}, (0, 1), {})
    (row,) = reg.compare([baseline], [summary], [bench])
    assert row.status == "REGRESSION" and row.kind == "quality"
