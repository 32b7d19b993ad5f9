"""The accuracy-cost figure: labels of runs that draw directions, one point per label from the right records,
baselines as lines, and its command line (bad input, nothing to draw)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fg2u.experiment.records import Memory, append_records, make_record, read_records
from fg2u_bench_vision import plots

FG2U_16 = {"estimator": "FG2U", "num_directions": 16}


def _record(estimator, seed, accuracy, *, settings=None, ipc=1, inner_steps=100, dataset="digits", memory=None):
    metrics = {"test_accuracy_mean": accuracy, "test_accuracy_std": 0.5}
    if estimator not in ("RandomReal", "WholeDataset"):
        metrics["meta_step_time_s"] = 0.1 * (seed + 1)
    return make_record(
        benchmark="vision",
        task=f"condensation-ipc{ipc}",
        dataset=dataset,
        config="cpu",
        estimator=estimator,
        estimator_settings=settings or {},
        problem_settings={"ipc": ipc, "inner_steps": inner_steps},
        seed=seed,
        metrics=metrics,
        memory=None if memory is None else Memory("xla_temp_bytes", int(memory)),
        wall_time_s=1.0,
    )


def test_run_label_finds_the_directions_of_wrapped_estimators() -> None:
    assert plots.run_label(_record("RGU", 0, 80.0, settings={"estimator": "RGU"})) == "RGU"
    assert plots.run_label(_record("FG2U", 0, 50.0, settings=FG2U_16)) == "FG2U b=16"
    wrapped = {"estimator": FG2U_16, "scale": None, "surrogate": {"estimator": "HessianFree"}}
    assert plots.run_label(_record("ControlVariate", 0, 50.0, settings=wrapped)) == "ControlVariate b=16"
    two_phase = {"first": {"estimator": "HessianFree"}, "second": FG2U_16, "switch_step": 5}
    assert plots.run_label(_record("TwoPhase", 0, 50.0, settings=two_phase)) == "TwoPhase b=16"


def test_accuracy_cost_figure_selects_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[tuple[str, float, float]] = []

    import matplotlib.axes

    original = matplotlib.axes.Axes.errorbar

    def spy(self, x, y, *args, **kwargs):
        drawn.append((self.get_title() or "?", float(x[0]), float(y[0])))
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", spy)
    records = [
        _record("RGU", 0, 80.0, settings={"estimator": "RGU"}, memory=3 * 2**20),
        _record("RGU", 1, 90.0, settings={"estimator": "RGU"}, memory=3 * 2**20),
        _record("RGU", 1, 84.0, settings={"estimator": "RGU"}, memory=3 * 2**20),  # seed 1 again: the last counts
        _record("FG2U", 0, 50.0, settings=FG2U_16),  # written before memory was measured: time panel only
        _record("FG2U", 0, 99.0, settings=FG2U_16, ipc=10),  # other IPC
        _record("FG2U", 0, 99.0, settings=FG2U_16, inner_steps=10),  # other T
        _record("FG2U", 0, 99.0, settings=FG2U_16, dataset="mnist"),  # other data set
        _record("RandomReal", 0, 60.0),
    ]
    path = plots.save_accuracy_cost_figure(records, tmp_path / "a.png", dataset="digits", ipc=1, inner_steps=100)
    assert path is not None and path.read_bytes().startswith(b"\x89PNG")
    # titles are set after drawing, so points are told apart by their coordinates: RGU mean of 80 and 84
    assert sorted((round(x, 6), y) for _, x, y in drawn) == [(0.1, 50.0), (0.15, 82.0), (3.0, 82.0)]
    assert plots.save_accuracy_cost_figure(records, tmp_path / "b.png", dataset="cifar10", ipc=1) is None
    assert not (tmp_path / "b.png").exists()


def test_accuracy_cost_cli(tmp_path: Path, capsys) -> None:
    jsonl = tmp_path / "cpu.jsonl"
    append_records(jsonl, [_record("RGU", 0, 80.0, settings={"estimator": "RGU"}, memory=2**20)])
    assert len(read_records(jsonl)) == 1
    out = tmp_path / "fig.png"
    assert plots.main([str(jsonl), "--out", str(out)]) == 0 and out.is_file()
    assert plots.main([str(jsonl), "--dataset", "mnist", "--out", str(tmp_path / "none.png")]) == 1
    assert "nothing drawn" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        plots.main([str(tmp_path / "missing.jsonl"), "--out", str(out)])
    assert "no such record file" in capsys.readouterr().err
