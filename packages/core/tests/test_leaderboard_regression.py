"""The CI regression gate (fg2u.leaderboard.regression): declared metric kinds, deterministic gradient checks and
memory, stochastic bands from the seed spread, and every way data can go missing (issue 24's cases)."""

from __future__ import annotations

import json
import math
import sys

import pytest

from fg2u.benchmarks import Benchmark, DiscoveryIssue, Metric
from fg2u.experiment.provenance import RunContext, write_run_marker
from fg2u.experiment.records import Memory, append_records
from fg2u.leaderboard import regression as reg
from fg2u.leaderboard.__main__ import main as cli
from fg2u.leaderboard.aggregate import GroupKey, MetricStats

ACC = [60.0, 62.0, 64.0]  # smoke accuracies over seeds 0, 1, 2: mean 62, sample std 2
MEM = 2**20  # XLA memory of one meta step (deterministic)
GRAD = {"grad_projection": 0.95, "grad_cosine": 0.3, "grad_norm_ratio": 3.0, "grad_mse_ratio": 8.0}

TOY = Benchmark(
    name="vision",
    smoke_command=None,
    metrics=(Metric("test_accuracy", "higher", "%", "test accuracy", kind="stochastic"),),
    columns=("dataset",),
)


@pytest.fixture(autouse=True)
def declared(monkeypatch):
    """The gate sees the toy declaration only (not the installed plugins)."""
    monkeypatch.setattr(reg, "discover", lambda with_issues=False: ([TOY], []) if with_issues else [TOY])


def write_run(make, folder, accuracies=ACC, memory=MEM, grad=GRAD, seeds=None, status="ok", run_id=None):
    seeds = list(range(len(accuracies))) if seeds is None else seeds
    records = [
        make(
            seed=s,
            metrics={"test_accuracy": a, "wall_time_s_of_eval": 1.0 + s},
            memory=Memory("xla_temp_bytes", memory),
            status=status,
            **({"run_id": run_id} if run_id else {}),
        )
        for s, a in zip(seeds, accuracies)
    ]
    records.append(make(task="gradient-check-condensation", metrics=dict(grad), seed=seeds[0]))
    append_records(folder / "vision" / "smoke.jsonl", records)
    return folder


@pytest.fixture
def baseline(tmp_path, make_test_record):
    results = tmp_path / "results"
    fresh = write_run(make_test_record, tmp_path / "first")
    assert cli(["regression", "--results", str(results), "--fresh", str(fresh), "--update-baselines"]) == 0
    return results


def check(results, fresh):
    return cli(["regression", "--results", str(results), "--fresh", str(fresh)])


def rows(results, fresh):
    from fg2u.leaderboard.aggregate import load_results, summarize

    baselines, issues = reg.load_baselines(results / "baselines")
    assert issues == []
    loaded = load_results(fresh, warn=False)
    summaries, _ = summarize(loaded.records, include_device=False, partial_runs=loaded.partial_runs)
    return {(r.key.task, r.metric): r for r in reg.compare(baselines, summaries, [TOY])}


def test_baseline_file_is_standard_json_with_the_seed_spread(baseline):
    (line,) = [json.loads(x) for x in (baseline / "baselines" / "vision.jsonl").read_text().splitlines()[:1]]
    stats = line["metrics"]["test_accuracy"]
    assert stats["mean"] == pytest.approx(62.0) and stats["std"] == pytest.approx(2.0) and stats["n"] == 3
    assert line["baseline_format"] == reg.BASELINE_FORMAT


def test_the_same_results_pass(baseline, tmp_path, make_test_record, capsys):
    assert check(baseline, write_run(make_test_record, tmp_path / "again")) == 0
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("metric", "value", "status"),
    [
        ("grad_projection", -0.95, "changed"),  # a flipped sign
        ("grad_norm_ratio", 3.0 / 16, "changed"),  # a wrong 1/b scale (b = 16)
        ("grad_mse_ratio", 16.0, "changed"),  # directions repeated across two chunks: twice the error
        ("grad_projection", 0.95 * (1 + 2e-3), "changed"),  # beyond the 1e-3 tolerance
        ("grad_projection", 0.95 * (1 + 2e-4), "ok"),  # float32 round-off between machines
        ("grad_cosine", math.nan, "REGRESSION"),  # a NaN
    ],
)
def test_deterministic_gradient_check_catches_any_change(baseline, tmp_path, make_test_record, metric, value, status):
    fresh = write_run(make_test_record, tmp_path / "fresh", grad={**GRAD, metric: value})
    assert rows(baseline, fresh)[("gradient-check-condensation", metric)].status == status
    assert check(baseline, fresh) == (0 if status == "ok" else 1)


@pytest.mark.parametrize(("factor", "status", "code"), [(3.0, "REGRESSION", 1), (1.005, "ok", 0), (0.5, "improved", 0)])
def test_deterministic_memory_may_not_grow(baseline, tmp_path, make_test_record, factor, status, code):
    fresh = write_run(make_test_record, tmp_path / "fresh", memory=int(MEM * factor))
    assert rows(baseline, fresh)[("condensation", "memory_xla_temp_bytes")].status == status
    assert check(baseline, fresh) == code


def test_stochastic_band_is_the_t_quantile_of_the_seed_spread(baseline, tmp_path, make_test_record):
    # n_b = n_f = 3: band = t(0.999, 2 dof) · s · √(2/3) = 22.327 · 2 · 0.8165 = 36.46 accuracy points
    expected = reg.t_quantile(2) * 2.0 * math.sqrt(2 / 3)
    assert expected == pytest.approx(36.46, abs=0.01)
    inside = write_run(make_test_record, tmp_path / "inside", accuracies=[a - 30.0 for a in ACC])
    row = rows(baseline, inside)[("condensation", "test_accuracy")]
    assert row.status == "ok" and row.band == pytest.approx(expected)
    beyond = write_run(make_test_record, tmp_path / "beyond", accuracies=[a - 40.0 for a in ACC])
    assert rows(baseline, beyond)[("condensation", "test_accuracy")].status == "REGRESSION"


def test_band_with_one_seed_or_no_spread_is_the_floor():
    metric = Metric("acc", "higher", kind="stochastic")
    one = MetricStats.from_values([50.0])
    assert reg.band(metric, one, 3) == pytest.approx(reg.STOCHASTIC_FLOOR * 50.0 + reg.ABS_TOL)
    flat = MetricStats.from_values([50.0, 50.0, 50.0])
    assert reg.band(metric, flat, 3) == pytest.approx(reg.STOCHASTIC_FLOOR * 50.0 + reg.ABS_TOL)


def test_t_quantiles_decrease_to_the_normal():
    values = [reg.t_quantile(d) for d in range(1, 40)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert reg.t_quantile(1) == pytest.approx(318.31) and reg.t_quantile(100) == pytest.approx(3.09)
    with pytest.raises(ValueError):
        reg.t_quantile(0)


def test_undeclared_metrics_are_shown_not_gated(baseline, tmp_path, make_test_record):
    fresh = write_run(make_test_record, tmp_path / "fresh")
    assert rows(baseline, fresh)[("condensation", "wall_time_s_of_eval")].status == "info"


def test_losing_a_seed_fails(baseline, tmp_path, make_test_record, capsys):
    fresh = write_run(make_test_record, tmp_path / "fresh", accuracies=ACC[:2])
    assert rows(baseline, fresh)[("condensation", "(seeds)")].status == "MISSING"
    assert check(baseline, fresh) == 1


def test_an_empty_or_absent_benchmark_fails(baseline, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "vision").mkdir(parents=True)
    (empty / "vision" / "smoke.jsonl").write_text("")
    assert check(baseline, empty) == 1
    assert "group absent from the fresh records" in capsys.readouterr().out


def test_an_unreadable_line_fails_with_its_file_and_line(baseline, tmp_path, make_test_record, capsys):
    fresh = write_run(make_test_record, tmp_path / "fresh")
    with (fresh / "vision" / "smoke.jsonl").open("ab") as f:
        f.write(b"\xff\xfe not utf-8\n")
    assert check(baseline, fresh) == 1
    out = capsys.readouterr().out
    assert "smoke.jsonl:5" in out and "not UTF-8" in out
    assert "passed" not in out


def test_a_diverged_run_fails(baseline, tmp_path, make_test_record):
    fresh = write_run(make_test_record, tmp_path / "fresh", status="diverged")
    assert rows(baseline, fresh)[("condensation", "(status)")].status == "REGRESSION"
    assert check(baseline, fresh) == 1


def test_a_partial_invocation_fails(baseline, tmp_path, make_test_record, capsys):
    fresh = write_run(make_test_record, tmp_path / "fresh", run_id="run-killed")
    context = RunContext("run-killed", "2026-01-01T00:00:00+00:00", make_test_record().provenance, "cpu: test")
    write_run_marker(fresh / "vision", context, status="running", expected=9, written=4)
    assert check(baseline, fresh) == 1
    assert "did not complete" in capsys.readouterr().out


def test_update_baselines_refuses_partial_or_nonfinite_records(tmp_path, make_test_record, capsys):
    results = tmp_path / "results"
    nan = write_run(make_test_record, tmp_path / "nan", grad={**GRAD, "grad_cosine": math.nan})
    assert cli(["regression", "--results", str(results), "--fresh", str(nan), "--update-baselines"]) == 1
    assert "grad_cosine is non-finite" in capsys.readouterr().out
    assert not (results / "baselines").exists()
    diverged = write_run(make_test_record, tmp_path / "diverged", status="diverged")
    assert cli(["regression", "--results", str(results), "--fresh", str(diverged), "--update-baselines"]) == 1
    assert not (results / "baselines").exists()


def test_a_benchmark_with_baselines_that_did_not_run_fails(baseline, tmp_path, make_test_record, capsys):
    fresh = tmp_path / "fresh"
    append_records(fresh / "other" / "smoke.jsonl", [make_test_record(benchmark="other")])
    assert check(baseline, fresh) == 1


def test_records_written_elsewhere_fail_the_run(tmp_path, capsys):
    """`--bench-args "NAME=--out elsewhere"`: the command exits 0 but its folder has no record."""
    repo = tmp_path / "repo"
    script = repo / "bench.py"
    script.parent.mkdir(parents=True)
    script.write_text("import sys\nsys.exit(0)\n")
    bench = Benchmark(
        name="toy",
        smoke_command=("{python}", str(script), "--out", "{out}"),
        metrics=(Metric("m", "higher"),),
        columns=(),
    )
    ran, failures = reg.run_benchmarks(tmp_path / "out", repo_root=repo, benchmarks=[bench])
    assert ran == ["toy"] and "wrote no records" in failures[0]


def test_failing_command_or_plugin_fails_the_check(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    script = repo / "bench.py"
    script.parent.mkdir(parents=True)
    script.write_text("raise SystemExit(3)\n")
    bench = Benchmark(
        name="toy", smoke_command=(sys.executable, str(script)), metrics=(Metric("m", "higher"),), columns=()
    )
    ran, failures = reg.run_benchmarks(tmp_path / "out", repo_root=repo, benchmarks=[bench])
    assert ran == ["toy"] and "exit 3" in failures[0]
    issue = DiscoveryIssue("toy = fg2u_bench_toy.plugin:BENCHMARK", "cannot be loaded (ImportError: boom)")
    monkeypatch.setattr(reg, "discover", lambda with_issues=False: ([], [issue]))
    (tmp_path / "fresh").mkdir()
    assert cli(["regression", "--results", str(tmp_path), "--fresh", str(tmp_path / "fresh")]) == 1
    assert "cannot be loaded" in capsys.readouterr().out


def test_gated_metrics_are_the_declared_ones():
    assert set(reg.gated_metrics(TOY, "condensation")) == {"test_accuracy"}
    assert set(reg.gated_metrics(TOY, "gradient-check-condensation")) == {m.name for m in reg.GRADIENT_CHECK}
    info = Benchmark(name="x", smoke_command=None, metrics=(Metric("seconds", "lower", "s", kind="info"),), columns=())
    assert reg.gated_metrics(info, "t") == {}
    key = GroupKey("vision", "condensation", "digits", "smoke", "FG2U")
    assert reg._group_metrics(TOY, key, ["memory_xla_temp_bytes", "memory_peak_rss_bytes"]).keys() == {
        "test_accuracy",
        "memory_xla_temp_bytes",
    }
