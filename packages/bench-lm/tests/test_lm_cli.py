"""End to end: the smoke CLI writes result records; the memory sweep's budget logic and plot."""

import pytest
import torch

from fg2u.records import read_records
from fg2u_bench_lm import memory
from fg2u_bench_lm.run import main


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # main() sets 1 thread; restore for other test files


def test_smoke_cli_writes_records(tmp_path, capsys):
    out = tmp_path / "lm"
    assert main(["--config", "smoke", "--estimators", "base", "uniform", "rgu", "fg2u", "--seeds", "0",
                 "--out", str(out), "--no-progress", "--meta-steps", "1", "--predictions"]) == 0
    records = read_records(out / "smoke.jsonl")
    assert [r.estimator for r in records] == ["base", "uniform", "RGU", "FG2U"]
    for r in records:
        assert r.benchmark == "lm" and r.task == "camels" and r.config == "smoke" and r.seed == 0
        for key in ("em", "em_prefix", "f1"):
            assert 0.0 <= r.metrics[key] <= 100.0
        assert r.metrics["num_questions"] > 0
    fg2u = records[-1]
    assert fg2u.settings["num_directions"] == 2 and fg2u.settings["num_steps"] == 2
    assert "val_outer_loss_after" in fg2u.metrics
    assert (out / "smoke_predictions.jsonl").exists()
    text = capsys.readouterr().out
    assert "EM-prefix" in text and "FG2U" in text
    # second run reuses the cached pre-trained base model and appends
    assert main(["--config", "smoke", "--estimators", "uniform", "--out", str(out), "--no-progress"]) == 0
    again = read_records(out / "smoke.jsonl")
    assert len(again) == 5 and again[-1].metrics == records[1].metrics


def test_cli_missing_data_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("FG2U_LM_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="FG2U_LM_DATA"):
        main(["--config", "smoke", "--data", "squad", "--out", str(tmp_path), "--no-progress"])


def test_memory_sweep_stops_at_budget_and_plots(tmp_path, monkeypatch):
    calls = []

    def fake(config, estimator, t, **kw):
        calls.append((estimator, t))
        per_step = 100 * 2**20 if estimator == "rgu" else 0
        return {"estimator": estimator, "num_steps": t, "delta_bytes": 50 * 2**20 + per_step * t, "seconds": 0.1,
                "outer_loss": 1.0}

    monkeypatch.setattr(memory, "measure_in_subprocess", fake)
    results = memory.sweep("smoke", (1, 2, 4, 8, 16), (6, 24), budget_bytes=600 * 2**20)
    # rgu: T=1 150 MiB, T=2 250, T=4 450, T=8 predicted 900 > 600 → skipped, and so is T=16
    assert calls == [("rgu", 1), ("rgu", 2), ("rgu", 4), ("fg2u", 6), ("fg2u", 24)]
    skipped = [r["num_steps"] for r in results if r.get("skipped")]
    assert skipped == [8, 16]
    png = memory.plot_memory(results, tmp_path / "m.png", 600 * 2**20)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
