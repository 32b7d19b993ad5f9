"""Aggregation of result records: loading, grouping, mean ± std, best marks, bad input (published
reference numbers: test_leaderboard_plugins.py)."""

from __future__ import annotations

import dataclasses
import json
import math
import sys

import pytest

from fg2u.leaderboard import aggregate as agg
from fg2u.records import ResultRecord, append_records, make_record

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


def rec(estimator="FG2U", seed=0, metrics=None, settings=None, **fields) -> ResultRecord:
    """A record like ``make_record`` writes (environment fields filled once, for speed)."""
    return dataclasses.replace(
        _TEMPLATE,
        estimator=estimator,
        seed=seed,
        metrics=dict(metrics or {"test_accuracy": 0.5}),
        settings=dict(settings or {}),
        **fields,
    )


def by_estimator(summaries, name):
    (found,) = [s for s in summaries if s.key.estimator == name]
    return found


def test_mean_and_sample_std_match_hand_computed_values(tmp_path):
    # accuracies 0.5, 0.7, 0.9: mean 0.7, sample variance ((-.2)² + 0 + .2²) / (3 - 1) = 0.04, std 0.2
    append_records(
        tmp_path / "vision" / "smoke.jsonl",
        [
            rec(seed=s, metrics={"test_accuracy": a, "loss": loss}, wall_time_s=t, peak_memory_bytes=m)
            for s, a, loss, t, m in [(0, 0.5, 2.0, 1.0, 100), (1, 0.7, 4.0, 2.0, 100), (2, 0.9, 9.0, 6.0, 100)]
        ],
    )
    summaries, issues = agg.aggregate(tmp_path, warn=False)
    assert issues == []
    (s,) = summaries
    assert s.seeds == (0, 1, 2) and s.n == 3
    acc = s.metrics["test_accuracy"]
    assert acc.mean == pytest.approx(0.7, abs=1e-15) and acc.std == pytest.approx(0.2, abs=1e-15) and acc.n == 3
    # loss 2, 4, 9: mean 5, deviations -3, -1, 4 -> variance 26 / 2 = 13
    assert s.metrics["loss"].mean == pytest.approx(5.0) and s.metrics["loss"].std == pytest.approx(math.sqrt(13))
    assert s.metrics["wall_time_s"].mean == pytest.approx(3.0)
    assert s.metrics["peak_memory_bytes"].mean == 100 and s.metrics["peak_memory_bytes"].std == 0.0


def test_single_seed_has_no_std():
    (s,), _ = agg.summarize([rec(metrics={"test_accuracy": 0.25})])
    assert s.metrics["test_accuracy"].std is None and s.metrics["test_accuracy"].n == 1


def test_grouping_separates_estimators_settings_and_merges_seeds():
    records = [rec("FG2U", seed, settings={"ipc": ipc, "num_directions": 4}) for seed in (0, 1) for ipc in (1, 10)]
    records += [rec("RGU", seed, settings={"ipc": 1}) for seed in (0, 1, 2)]
    summaries, notes = agg.summarize(records)
    assert notes == []
    keys = {(s.key.estimator, s.key.settings_dict.get("ipc")): s.seeds for s in summaries}
    assert keys == {("FG2U", 1): (0, 1), ("FG2U", 10): (0, 1), ("RGU", 1): (0, 1, 2)}


def test_other_fields_split_groups():
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


def test_per_run_and_bookkeeping_settings_do_not_split_groups():
    records = [
        rec(
            seed=s,
            settings={
                "ipc": 1,
                "eval_accuracies": [s, s + 1],
                "image_grid": f"img{s}.png",
                "data_dir": f"/d{s}",
                "seed": s,
                "estimator_settings": {"loss_history": [s]},
            },
        )
        for s in range(3)
    ]
    summaries, notes = agg.summarize(records)
    assert len(summaries) == 1 and summaries[0].seeds == (0, 1, 2) and notes == []
    assert summaries[0].key.settings_dict == {"ipc": 1}


def test_nested_settings_are_flattened_and_lists_compared_as_json():
    flat = agg.flatten_settings({"inner": {"lr": 0.1, "steps": 4}, "widths": [8, 16], "seed": 3, "extra": {}})
    assert flat == {"inner.lr": 0.1, "inner.steps": 4, "widths": "[8, 16]"}


def test_runs_split_by_a_per_seed_setting_get_a_note():
    records = [rec(seed=s, settings={"run_tag": f"tag{s}"}) for s in range(3)]
    summaries, notes = agg.summarize(records)
    assert len(summaries) == 3
    (note,) = notes
    assert "run_tag" in note.message and "not merged" in note.message


def test_repeated_seed_keeps_the_latest_run_and_says_so(tmp_path):
    path = tmp_path / "vision" / "smoke.jsonl"
    append_records(path, [rec(seed=0, metrics={"test_accuracy": 0.1}, timestamp="2026-11-23T10:00:00+00:00")])
    append_records(path, [rec(seed=0, metrics={"test_accuracy": 0.3}, timestamp="2026-11-23T11:00:00+00:00")])
    summaries, issues = agg.aggregate(tmp_path, warn=False)
    (s,) = summaries
    assert s.n == 1 and s.metrics["test_accuracy"].mean == 0.3
    (note,) = issues
    assert note.path == str(path) and note.line == 1 and "run again" in note.message


def test_nonfinite_values_are_counted_and_left_out():
    records = [
        rec(seed=0, metrics={"loss": 1.0}),
        rec(seed=1, metrics={"loss": 3.0}),
        rec(seed=2, metrics={"loss": math.nan}),
    ]
    (s,), _ = agg.summarize(records)
    stats = s.metrics["loss"]
    assert (stats.mean, stats.n, stats.n_nonfinite) == (2.0, 2, 1)
    assert stats.std == pytest.approx(math.sqrt(2.0))


def test_malformed_and_partial_lines_are_skipped_with_file_and_line(tmp_path, capsys):
    path = tmp_path / "vision" / "smoke.jsonl"
    good = rec(seed=0, metrics={"test_accuracy": 0.5})
    bad = json.loads(good.to_json())
    lines = [
        good.to_json(),  # 1 ok
        "{not json",  # 2
        json.dumps({k: v for k, v in bad.items() if k != "metrics"}),  # 3 partial: no metrics field
        json.dumps({**bad, "seed": 1, "metrics": {"test_accuracy": "high"}}),  # 4 metric not a number
        json.dumps([1, 2, 3]),  # 5 not an object
        json.dumps({**bad, "seed": 2, "metrics": {}}),  # 6 partial: no metrics
        "",  # 7 blank: ignored
        json.dumps({**bad, "seed": 3, "estimator": ""}),  # 8 empty estimator
        json.dumps({**bad, "seed": 4, "metrics": {"test_accuracy": 0.7}}),  # 9 ok
    ]
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    summaries, issues = agg.aggregate(tmp_path)
    assert [i.line for i in issues] == [2, 3, 4, 5, 6, 8]
    assert all(i.path == str(path) and "skipped" in i.message for i in issues)
    err = capsys.readouterr().err
    for line in (2, 3, 4, 5, 6, 8):
        assert f"{path}:{line}:" in err
    (s,) = summaries  # only lines 1 and 9 were merged
    assert s.seeds == (0, 4) and s.metrics["test_accuracy"].mean == pytest.approx(0.6)


def test_baselines_and_hidden_folders_are_not_results(tmp_path):
    append_records(tmp_path / "vision" / "smoke.jsonl", [rec(seed=0)])
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "vision.jsonl").write_text('{"baseline_format": 1}\n')
    append_records(tmp_path / ".cache" / "x.jsonl", [rec(seed=1)])
    loaded = agg.load_results(tmp_path, warn=False)
    assert len(loaded.records) == 1 and loaded.issues == ()


def test_missing_results_folder_is_reported(tmp_path):
    loaded = agg.load_results(tmp_path / "nope", warn=False)
    assert loaded.records == () and "does not exist" in loaded.issues[0].message


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
        ("peak_memory_bytes", "lower"),
        ("wall_time_s", "lower"),
        ("test_accuracy_std", None),
        ("num_params", None),
    ],
)
def test_metric_direction(name, direction):
    assert agg.metric_direction(name) == direction


def test_best_is_per_comparison_group_and_metric():
    records = (
        [rec("FG2U", s, {"test_accuracy": a, "compiled_temp_bytes": 10.0}, {"ipc": 1}) for s, a in [(0, 0.8), (1, 0.9)]]
        + [
            rec("RGU", s, {"test_accuracy": a, "compiled_temp_bytes": 50.0}, {"ipc": 1})
            for s, a in [(0, 0.95), (1, 0.97)]
        ]
        + [rec("FG2U", 0, {"test_accuracy": 0.99}, {"ipc": 10})]
    )  # alone in its group: never marked
    summaries, _ = agg.summarize(records)
    best = {(k.estimator, k.settings_dict["ipc"], m) for k, m in agg.best_entries(summaries)}
    assert best == {("RGU", 1, "test_accuracy"), ("FG2U", 1, "compiled_temp_bytes")}


def test_to_dataframe_and_clear_error_without_pandas(monkeypatch):
    summaries, _ = agg.summarize([rec(seed=0), rec(seed=1, metrics={"test_accuracy": 0.7})])
    frame = agg.to_dataframe(summaries)
    row = frame[frame.metric == "test_accuracy"].iloc[0]
    assert row["mean"] == pytest.approx(0.6) and row["n"] == 2 and row["direction"] == "higher"
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r'pip install "fg2u\[leaderboard\]"'):
        agg.to_dataframe(summaries)


def test_baselines_never_win_and_memory_compares_only_equal_measures():
    records = [
        rec("FG2U", 0, {"test_accuracy": 0.6, "peak_memory_mib": 5.0}, {"memory_measure": "rss"}),
        rec("RGU", 0, {"test_accuracy": 0.5, "peak_memory_mib": 1.0}, {"memory_measure": "compiled"}),
        rec("WholeDataset", 0, {"test_accuracy": 0.9}),  # a declared yard stick
        rec("Random", 0, {"test_accuracy": 0.95}, {"baseline": "random subset"}),  # and one by setting
    ]
    summaries, _ = agg.summarize(records)
    yardsticks = {"vision": ("WholeDataset",)}  # what the benchmark's declaration says
    best = {(k.estimator, m) for k, m in agg.best_entries(summaries, yardsticks)}
    # accuracy: FG2U beats RGU (the baselines do not compete); memory: each measure is alone, unmarked
    assert best == {("FG2U", "test_accuracy")}
    assert not agg.competes(by_estimator(summaries, "WholeDataset").key, yardsticks)
    assert agg.competes(by_estimator(summaries, "WholeDataset").key)  # undeclared: it competes
    assert not agg.competes(by_estimator(summaries, "Random").key)
    # a declared direction overrides the name rule ("hits" has none by its words)
    records = [rec("FG2U", 0, {"hits": 3.0}), rec("RGU", 0, {"hits": 5.0})]
    summaries, _ = agg.summarize(records)
    assert not agg.best_entries(summaries)
    assert {k.estimator for k, _ in agg.best_entries(summaries, directions={("vision", "hits"): "lower"})} == {"FG2U"}


def test_quality_competes_across_unroll_depths_but_memory_does_not():
    # the paper's LM setting: RGU affords T = 6, FG2U T = 24; F1 compares, memory only at equal T
    records = [
        rec("RGU", 0, {"f1": 10.0, "peak_memory_bytes_x": 1.0}, {"num_steps": 6}),
        rec("FG2U", 0, {"f1": 12.0, "peak_memory_bytes_x": 3.0}, {"num_steps": 24}),
        rec("uniform", 0, {"f1": 11.0}),  # a baseline without num_steps: shown, never best
    ]
    summaries, _ = agg.summarize(records)
    best = {(k.estimator, m) for k, m in agg.best_entries(summaries)}
    assert best == {("FG2U", "f1")}


def test_a_jsonl_file_that_holds_no_records_is_one_message(tmp_path):
    append_records(tmp_path / "lm" / "cpu.jsonl", [rec(seed=0)])
    (tmp_path / "lm" / "cpu_predictions.jsonl").write_text('{"question": "q", "answer": "a"}\n' * 50)
    loaded = agg.load_results(tmp_path, warn=False)
    assert len(loaded.records) == 1
    (issue,) = loaded.issues
    assert issue.line == 0 and "not a result-record file" in issue.message and "cpu_predictions.jsonl" in issue.path
