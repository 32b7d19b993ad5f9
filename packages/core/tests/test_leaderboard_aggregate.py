"""Aggregation of schema-2 result records: loading (file:line of anything skipped, declared metric bounds,
parsed timestamps), grouping, mean ± std, runs that diverged, failed or come from an unfinished invocation,
and which entries compete for "best" (published reference numbers: test_leaderboard_plugins.py).
Records come from the shared ``make_test_record`` fixture (conftest.py)."""

from __future__ import annotations

import json
import math
import sys

import pytest

from fg2u.benchmarks import Benchmark, Metric
from fg2u.experiment.provenance import RunContext, write_run_marker
from fg2u.experiment.records import Memory, append_records
from fg2u.leaderboard import aggregate as agg


@pytest.fixture
def rec(make_test_record):
    """``rec(estimator, seed, metrics, problem, **fields)``: a test record with those fields (the shared template
    for the rest)."""

    def make(estimator="FG2U", seed=0, metrics=None, problem=None, **fields):
        return make_test_record(
            estimator=estimator,
            seed=seed,
            metrics=dict(metrics or {"test_accuracy": 50.0}),
            problem_settings=dict(problem or {}),
            **fields,
        )

    return make


def by_estimator(summaries, name):
    (found,) = [s for s in summaries if s.key.estimator == name]
    return found


VISION = Benchmark(
    "vision",
    None,
    (Metric("test_accuracy_mean", "higher", "%"), Metric("relative_error", "lower", "fraction", bounds=(0.0, 10.0))),
    ("dataset",),
)


# ------------------------------------------------------------------------------------------- statistics
def test_mean_and_sample_std_match_hand_computed_values(tmp_path, rec):
    # accuracies 50, 70, 90: mean 70, sample variance ((-20)² + 0 + 20²) / (3 - 1) = 400, std 20
    append_records(
        tmp_path / "vision" / "smoke.jsonl",
        [
            rec(seed=s, metrics={"test_accuracy": a, "loss": loss}, wall_time_s=t, memory=Memory("xla_temp_bytes", 100))
            for s, a, loss, t in [(0, 50.0, 2.0, 1.0), (1, 70.0, 4.0, 2.0), (2, 90.0, 9.0, 6.0)]
        ],
    )
    summaries, issues = agg.aggregate(tmp_path, warn=False)
    assert issues == []
    (s,) = summaries
    assert s.seeds == (0, 1, 2) and s.n == 3 and s.partial == 0 and s.not_ok == ()
    acc = s.metrics["test_accuracy"]
    assert acc.mean == pytest.approx(70.0, abs=1e-13) and acc.std == pytest.approx(20.0, abs=1e-13) and acc.n == 3
    # loss 2, 4, 9: mean 5, deviations -3, -1, 4 -> variance 26 / 2 = 13
    assert s.metrics["loss"].mean == pytest.approx(5.0) and s.metrics["loss"].std == pytest.approx(math.sqrt(13))
    assert s.metrics["wall_time_s"].mean == pytest.approx(3.0)
    memory = s.metrics["memory_xla_temp_bytes"]  # the record's memory, named by its measure
    assert (memory.mean, memory.std, memory.n) == (100.0, 0.0, 3)
    assert s.git_commits == (rec().provenance.git_commit,)
    assert s.sources == tuple(f"{tmp_path / 'vision' / 'smoke.jsonl'}:{line}" for line in (1, 2, 3))


def test_single_seed_has_no_std(rec):
    (s,), _ = agg.summarize([rec(metrics={"test_accuracy": 25.0})])
    assert s.metrics["test_accuracy"].std is None and s.metrics["test_accuracy"].n == 1


def test_nonfinite_values_are_counted_and_left_out(rec):
    records = [
        rec(seed=0, metrics={"loss": 1.0}),
        rec(seed=1, metrics={"loss": 3.0}),
        rec(seed=2, metrics={"loss": math.nan}),
    ]
    (s,), _ = agg.summarize(records)
    stats = s.metrics["loss"]
    assert (stats.mean, stats.n, stats.n_nonfinite) == (2.0, 2, 1)
    assert stats.std == pytest.approx(math.sqrt(2.0))


def test_diverged_and_failed_runs_count_as_nonfinite_values_of_every_metric(rec):
    records = [
        rec(seed=0, metrics={"test_accuracy": 40.0, "loss": 1.0}),
        rec(seed=1, metrics={"test_accuracy": 60.0, "loss": 3.0}),
        rec(seed=2, status="diverged", metrics={"diverged_at_step": 7.0}),
        rec(seed=3, status="failed", metrics={}, details={"error": "RuntimeError: boom"}),
    ]
    (s,), _ = agg.summarize(records)
    assert s.seeds == (0, 1, 2, 3) and s.not_ok == ("diverged", "failed")
    for name, mean in (("test_accuracy", 50.0), ("loss", 2.0)):  # the mean of the finished runs only
        stats = s.metrics[name]
        assert (stats.mean, stats.n, stats.n_nonfinite) == (mean, 2, 2)
        assert stats.seeds == (0, 1, 2, 3)
    assert s.metrics["wall_time_s"].n == 4  # every run took time


# ---------------------------------------------------------------------------------------------- grouping
def test_grouping_separates_estimators_settings_and_merges_seeds(rec):
    records = [
        rec("FG2U", seed, problem={"ipc": ipc}, estimator_settings={"num_directions": 4})
        for seed in (0, 1)
        for ipc in (1, 10)
    ]
    records += [rec("RGU", seed, problem={"ipc": 1}) for seed in (0, 1, 2)]
    records += [rec("FG2U", 0, problem={"ipc": 1}, estimator_settings={"num_directions": 8})]
    summaries, notes = agg.summarize(records)
    assert notes == []
    keys = {
        (s.key.estimator, s.key.settings_dict.get("ipc"), s.key.settings_dict.get("estimator.num_directions")): s.seeds
        for s in summaries
    }
    assert keys == {
        ("FG2U", 1, 4): (0, 1),
        ("FG2U", 10, 4): (0, 1),
        ("FG2U", 1, 8): (0,),
        ("RGU", 1, None): (0, 1, 2),
    }


def test_config_settings_split_groups_under_their_prefix(rec):
    records = [rec(seed=s, config_settings={"meta_lr": lr}) for s in (0, 1) for lr in (0.1, 0.01)]
    summaries, _ = agg.summarize(records)
    assert sorted(s.key.settings_dict["config.meta_lr"] for s in summaries) == [0.01, 0.1]


def test_other_fields_split_groups(rec):
    records = [
        rec(seed=0),
        rec(seed=1, task="other"),
        rec(seed=2, dataset="mnist"),
        rec(seed=3, config="cpu"),
        rec(seed=4, benchmark="pde"),
        rec(seed=5, device="gpu: H100"),
    ]
    summaries, _ = agg.summarize(records)
    assert len(summaries) == 6
    pooled, _ = agg.summarize([rec(seed=0), rec(seed=1, device="gpu: H100")], include_device=False)
    assert len(pooled) == 1 and pooled[0].seeds == (0, 1)


def test_per_run_and_bookkeeping_settings_do_not_split_groups(rec):
    records = [
        rec(
            seed=s,
            problem={
                "ipc": 1,
                "eval_accuracies": [s, s + 1],
                "image_grid": f"img{s}.png",
                "data_dir": f"/d{s}",
                "seed": s,
            },
            estimator_settings={"loss_history": [s]},
        )
        for s in range(3)
    ]
    summaries, notes = agg.summarize(records)
    assert len(summaries) == 1 and summaries[0].seeds == (0, 1, 2) and notes == []
    assert summaries[0].key.settings_dict == {"ipc": 1}


def test_nested_settings_are_flattened_and_lists_compared_as_json():
    flat = agg.flatten_settings({"inner": {"lr": 0.1, "steps": 4}, "widths": [8, 16], "seed": 3, "extra": {}})
    assert flat == {"inner.lr": 0.1, "inner.steps": 4, "widths": "[8, 16]"}


def test_runs_split_by_a_per_seed_setting_get_a_note(rec):
    records = [rec(seed=s, problem={"run_tag": f"tag{s}"}) for s in range(3)]
    summaries, notes = agg.summarize(records)
    assert len(summaries) == 3
    (note,) = notes
    assert "run_tag" in note.message and "not merged" in note.message


# ----------------------------------------------------------------------------------- repeated seeds, time
def test_repeated_seed_keeps_the_latest_run_by_parsed_time_and_says_so(tmp_path, rec):
    path = tmp_path / "vision" / "smoke.jsonl"
    # 10:00+02:00 is 08:00 UTC: earlier than 09:00+00:00, although its text sorts later
    append_records(path, [rec(metrics={"test_accuracy": 30.0}, timestamp="2026-11-23T09:00:00+00:00")])
    append_records(path, [rec(metrics={"test_accuracy": 10.0}, timestamp="2026-11-23T10:00:00+02:00")])
    summaries, issues = agg.aggregate(tmp_path, warn=False)
    (s,) = summaries
    assert s.n == 1 and s.metrics["test_accuracy"].mean == 30.0
    (note,) = issues
    assert note.path == str(path) and note.line == 2 and "run again" in note.message and ":1," in note.message


def test_a_same_time_repeat_keeps_the_later_line(rec):
    (s,), notes = agg.summarize([rec(metrics={"test_accuracy": 1.0}), rec(metrics={"test_accuracy": 2.0})])
    assert s.metrics["test_accuracy"].mean == 2.0 and len(notes) == 1


def test_a_duplicate_with_an_unparsable_timestamp_is_rejected_not_the_winner(tmp_path, rec):
    """Issue 24: a duplicate whose timestamp is "zzz" used to win (string comparison: "z" > "2")."""
    path = tmp_path / "vision" / "smoke.jsonl"
    append_records(path, [rec(metrics={"test_accuracy": 40.0})])
    forged = json.loads(rec(metrics={"test_accuracy": 99.0}).to_json())
    forged["timestamp"] = "zzz"
    with path.open("a") as f:
        f.write(json.dumps(forged) + "\n")
    summaries, issues = agg.aggregate(tmp_path, warn=False)
    (s,) = summaries
    assert s.metrics["test_accuracy"].mean == 40.0 and s.n == 1
    (issue,) = issues
    assert (issue.path, issue.line) == (str(path), 2) and "'timestamp' 'zzz' is not an ISO 8601 time" in issue.message


# ---------------------------------------------------------------------------------------------- loading
def test_malformed_and_partial_lines_are_skipped_with_file_and_line(tmp_path, capsys, rec):
    path = tmp_path / "vision" / "smoke.jsonl"
    good = rec(seed=0, metrics={"test_accuracy": 50.0})
    data = json.loads(good.to_json())
    lines = [
        good.to_json(),  # 1 ok
        "{not json",  # 2
        json.dumps({k: v for k, v in data.items() if k != "metrics"}),  # 3 no metrics field
        json.dumps({**data, "seed": 1, "metrics": {"test_accuracy": "high"}}),  # 4 metric not a number
        json.dumps([1, 2, 3]),  # 5 not an object
        json.dumps({**data, "seed": 2, "metrics": {}}),  # 6 status ok without metrics
        "",  # 7 blank: ignored
        json.dumps({**data, "seed": 3, "estimator": ""}),  # 8 empty estimator
        json.dumps({**data, "seed": 5, "schema_version": 1}),  # 9 an unconverted schema-1 record
        json.dumps({**data, "seed": 4, "metrics": {"test_accuracy": 70.0}}),  # 10 ok
    ]
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    summaries, issues = agg.aggregate(tmp_path)
    assert [i.line for i in issues] == [2, 3, 4, 5, 6, 8, 9]
    assert all(i.path == str(path) and "skipped" in i.message for i in issues)
    assert "missing fields ['metrics']" in issues[1].message and "scripts/migrate_records.py" in issues[6].message
    err = capsys.readouterr().err
    for line in (2, 3, 4, 5, 6, 8, 9):
        assert f"warning: {path}:{line}:" in err
    (s,) = summaries  # only lines 1 and 10 were merged
    assert s.seeds == (0, 4) and s.metrics["test_accuracy"].mean == pytest.approx(60.0)


def test_invalid_utf8_drops_only_its_line(tmp_path, rec):
    """Issue 24: one invalid byte used to drop a whole file of good records, with a wrong message."""
    path = tmp_path / "vision" / "smoke.jsonl"
    append_records(path, [rec(seed=s) for s in range(22)])
    raw = path.read_bytes().split(b"\n")
    raw[4] = raw[4].replace(b"condensation", b"conden\xffsation")
    path.write_bytes(b"\n".join(raw))
    loaded = agg.load_results(tmp_path, warn=False)
    assert len(loaded.records) == 21
    (issue,) = loaded.issues
    assert (issue.path, issue.line) == (str(path), 5) and "not UTF-8" in issue.message


def test_metrics_outside_their_declared_bounds_are_rejected_at_load(tmp_path, rec):
    """Issue 24: an accuracy of 1e9 % was shown bold as the best. Declared bounds: % → [0, 100] by default,
    an explicit (0, 10) for the relative error; NaN is left to the statistics (a diverged run)."""
    path = tmp_path / "vision" / "smoke.jsonl"
    append_records(
        path,
        [
            rec(seed=0, metrics={"test_accuracy_mean": 61.0}),
            rec(seed=1, metrics={"test_accuracy_mean": 1e9}),  # line 2
            rec(seed=2, metrics={"test_accuracy_mean": -0.5}),  # line 3
            rec(seed=3, metrics={"test_accuracy_mean": 100.0, "relative_error": 10.5}),  # line 4
            rec(seed=4, metrics={"test_accuracy_mean": math.nan}),
            rec(seed=5, metrics={"test_accuracy_mean": 1e9}, benchmark="other"),  # not declared: not checked
        ],
    )
    loaded = agg.load_results(tmp_path, warn=False, benchmarks=[VISION])
    assert [(i.line, i.path) for i in loaded.issues] == [(2, str(path)), (3, str(path)), (4, str(path))]
    assert "metric 'test_accuracy_mean' = 1000000000.0 is outside its declared range [0.0, 100.0] (%)" in (
        loaded.issues[0].message
    )
    assert "metric 'relative_error' = 10.5 is outside its declared range [0.0, 10.0]" in loaded.issues[2].message
    assert sorted(r.record.seed for r in loaded.records) == [0, 4, 5]
    summaries, _ = agg.aggregate(tmp_path, warn=False, benchmarks=[VISION])
    (vision,) = [s for s in summaries if s.key.benchmark == "vision"]
    assert vision.seeds == (0, 4) and vision.metrics["test_accuracy_mean"].mean == 61.0
    assert len(agg.load_results(tmp_path, warn=False).records) == 6  # without declarations nothing is checked


def test_baselines_hidden_folders_and_run_markers_are_not_results(tmp_path, rec):
    append_records(tmp_path / "vision" / "smoke.jsonl", [rec(seed=0)])
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "vision.jsonl").write_text('{"baseline_format": 1}\n')
    append_records(tmp_path / ".cache" / "x.jsonl", [rec(seed=1)])
    (tmp_path / "vision" / "runs").mkdir()
    (tmp_path / "vision" / "runs" / "r.json").write_text('{"run_id": "r", "status": "complete"}\n')
    loaded = agg.load_results(tmp_path, warn=False)
    assert len(loaded.records) == 1 and loaded.issues == () and loaded.partial_runs == frozenset()


def test_missing_results_folder_is_reported(tmp_path):
    loaded = agg.load_results(tmp_path / "nope", warn=False)
    assert loaded.records == () and "does not exist" in loaded.issues[0].message


def test_a_jsonl_file_that_holds_no_records_is_one_message(tmp_path, rec):
    append_records(tmp_path / "lm" / "cpu.jsonl", [rec(seed=0)])
    (tmp_path / "lm" / "cpu_predictions.jsonl").write_text('{"question": "q", "answer": "a"}\n' * 50)
    loaded = agg.load_results(tmp_path, warn=False)
    assert len(loaded.records) == 1
    (issue,) = loaded.issues
    assert issue.line == 0 and "not a result-record file" in issue.message and "cpu_predictions.jsonl" in issue.path


# ----------------------------------------------------------------------------------- partial invocations
@pytest.mark.parametrize("status, partial", [("running", 2), ("interrupted", 2), ("failed", 2), ("complete", 0)])
def test_records_of_an_unfinished_invocation_are_counted_partial(tmp_path, rec, status, partial):
    folder = tmp_path / "vision"
    template = rec()
    killed = RunContext("20260101T000000-aaaaaa", template.timestamp, template.provenance, "cpu: test")
    other = RunContext("20260101T000000-bbbbbb", template.timestamp, template.provenance, "cpu: test")
    append_records(folder / "smoke.jsonl", [rec(seed=s, run_id=killed.run_id) for s in (0, 1)])
    append_records(folder / "smoke.jsonl", [rec(seed=2, run_id=other.run_id), rec(seed=3, run_id=None)])
    write_run_marker(folder, killed, status=status, expected=3, written=2)
    write_run_marker(folder, other, status="complete", expected=1, written=1)
    loaded = agg.load_results(tmp_path, warn=False)
    assert loaded.partial_runs == (frozenset({killed.run_id}) if partial else frozenset())
    summaries, _ = agg.aggregate(tmp_path, warn=False)
    (s,) = summaries
    assert s.n == 4 and s.partial == partial  # kept and counted; a record without a run id is not partial


# ------------------------------------------------------------------------------------------- best marks
@pytest.mark.parametrize(
    "name, direction",
    [
        ("test_accuracy", "higher"),
        ("test_accuracy_mean", "higher"),
        ("f1", "higher"),
        ("em_prefix", "higher"),
        ("grad_cosine", "higher"),
        ("relative_l2_error", "lower"),
        ("coef_rel_error", "lower"),
        ("top1_error", "lower"),
        ("final_outer_loss", "lower"),
        ("compiled_temp_bytes", "lower"),
        ("memory_xla_temp_bytes", "lower"),
        ("memory_peak_rss_bytes", "lower"),
        ("wall_time_s", "lower"),
        ("test_accuracy_std", None),
        ("num_params", None),
    ],
)
def test_metric_direction(name, direction):
    assert agg.metric_direction(name) == direction


def test_best_is_per_comparison_group_and_metric(rec):
    records = (
        [
            rec("FG2U", s, {"test_accuracy": a, "compiled_temp_bytes": 10.0}, {"ipc": 1})
            for s, a in [(0, 80.0), (1, 90.0)]
        ]
        + [
            rec("RGU", s, {"test_accuracy": a, "compiled_temp_bytes": 50.0}, {"ipc": 1})
            for s, a in [(0, 95.0), (1, 97.0)]
        ]
        + [rec("FG2U", 0, {"test_accuracy": 99.0}, {"ipc": 10})]
    )  # alone in its group: never marked
    summaries, _ = agg.summarize(records)
    best = {(k.estimator, k.settings_dict["ipc"], m) for k, m in agg.best_entries(summaries)}
    # wall_time_s is 1.0 s everywhere: a pool where all are equal is not marked
    assert best == {("RGU", 1, "test_accuracy"), ("FG2U", 1, "compiled_temp_bytes")}


def test_problem_settings_decide_which_rows_compete(rec):
    """Runs compete only with runs of equal problem settings; estimator and config settings do not split the
    comparison (FG2U with 4 and with 8 directions, or another meta learning rate, are competitors)."""
    records = [
        rec("FG2U", 0, {"test_accuracy": 60.0}, {"ipc": 1}, estimator_settings={"num_directions": 4}),
        rec("FG2U", 0, {"test_accuracy": 70.0}, {"ipc": 1}, estimator_settings={"num_directions": 8}),
        rec("RGU", 0, {"test_accuracy": 65.0}, {"ipc": 1}, config_settings={"meta_lr": 0.1}),
        rec("RGU", 0, {"test_accuracy": 99.0}, {"ipc": 10}),  # another problem: not a competitor of the above
        rec("TRGU", 0, {"test_accuracy": 20.0}, {"ipc": 10}),
    ]
    summaries, _ = agg.summarize(records)
    best = {
        (k.estimator, k.settings_dict["ipc"], k.settings_dict.get("estimator.num_directions"))
        for k, m in agg.best_entries(summaries)
        if m == "test_accuracy"
    }
    assert best == {("FG2U", 1, 8), ("RGU", 10, None)}
    keys = {agg.comparison_key(s.key) for s in summaries}
    assert len(keys) == 2


def test_a_whole_process_peak_rss_is_never_marked_best(rec):
    """Issue 24: the peak RSS of a process rises in run order within one invocation: no 'best' for it; the
    peak-RSS growth of a fresh measure and XLA's temp bytes are comparable and marked."""
    records = [
        rec("FG2U", 0, memory=Memory("peak_rss", 100)),
        rec("RGU", 0, memory=Memory("peak_rss", 200)),
        rec("FG2U", 0, task="growth", memory=Memory("peak_rss_growth", 100)),
        rec("RGU", 0, task="growth", memory=Memory("peak_rss_growth", 200)),
        rec("FG2U", 0, task="xla", memory=Memory("xla_temp_bytes", 100)),
        rec("RGU", 0, task="xla", memory=Memory("xla_temp_bytes", 200)),
    ]
    summaries, _ = agg.summarize(records)
    assert "memory_peak_rss_bytes" in summaries[0].metrics
    best = {(k.task, k.estimator, m) for k, m in agg.best_entries(summaries) if m.startswith("memory_")}
    assert best == {("growth", "FG2U", "memory_peak_rss_growth_bytes"), ("xla", "FG2U", "memory_xla_temp_bytes")}


def test_yardsticks_never_win_and_memory_compares_only_equal_measures(rec):
    records = [
        rec("FG2U", 0, {"test_accuracy": 60.0}, memory=Memory("peak_rss_growth", 5 * 2**20)),
        rec("RGU", 0, {"test_accuracy": 50.0}, memory=Memory("xla_temp_bytes", 2**20)),
        rec("WholeDataset", 0, {"test_accuracy": 90.0}),  # a declared yard stick
        rec("Random", 0, {"test_accuracy": 95.0}, {"baseline": "random subset"}),  # and one by setting
    ]
    summaries, _ = agg.summarize(records)
    yardsticks = {"vision": ("WholeDataset",)}  # what the benchmark's declaration says
    best = {(k.estimator, m) for k, m in agg.best_entries(summaries, yardsticks)}
    # accuracy: FG2U beats RGU (the yard sticks do not compete); memory: each measure is alone, unmarked
    assert best == {("FG2U", "test_accuracy")}
    assert not agg.competes(by_estimator(summaries, "WholeDataset").key, yardsticks)
    assert agg.competes(by_estimator(summaries, "WholeDataset").key)  # undeclared: it competes
    assert not agg.competes(by_estimator(summaries, "Random").key)


def test_a_declared_direction_overrides_the_name_rule(rec):
    summaries, _ = agg.summarize([rec("FG2U", 0, {"hits": 3.0}), rec("RGU", 0, {"hits": 5.0})])
    assert not agg.best_entries(summaries)  # "hits" has no direction by its words
    assert {k.estimator for k, _ in agg.best_entries(summaries, directions={("vision", "hits"): "lower"})} == {"FG2U"}


def test_to_dataframe_and_clear_error_without_pandas(monkeypatch, rec):
    pytest.importorskip("pandas")
    summaries, _ = agg.summarize([rec(seed=0), rec(seed=1, metrics={"test_accuracy": 70.0})])
    frame = agg.to_dataframe(summaries)
    row = frame[frame.metric == "test_accuracy"].iloc[0]
    assert row["mean"] == pytest.approx(60.0) and row["n"] == 2 and row["direction"] == "higher"
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r'pip install "fg2u\[leaderboard\]"'):
        agg.to_dataframe(summaries)
