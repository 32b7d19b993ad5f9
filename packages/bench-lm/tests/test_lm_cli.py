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
    assert (
        main(
            [
                "--config",
                "smoke",
                "--seeds",
                "0",
                "--out",
                str(out),
                "--no-progress",
                "--meta-steps",
                "1",
                "--predictions",
            ]
        )
        == 0
    )
    records = read_records(out / "smoke.jsonl")
    assert [r.estimator for r in records] == ["base", "uniform", "oracle", "RGU", "FG2U"]
    for r in records:
        assert r.benchmark == "lm" and r.task == "camels" and r.config == "smoke" and r.seed == 0
        assert r.dataset == "synthetic-sparse-facts"
        for key in ("em", "em_prefix", "f1", "em_sgd", "f1_sgd"):  # Adam and SGD protocols
            assert 0.0 <= r.metrics[key] <= 100.0
        assert r.metrics["num_questions"] > 0
    rgu, fg2u = records[-2], records[-1]
    assert rgu.settings["estimator"] == "RGU"  # the settings of the fg2u.torch.RGU object itself
    assert fg2u.settings["num_directions"] == 2 and fg2u.settings["num_steps"] == 2
    assert "val_outer_loss_after" in fg2u.metrics and "test_weight_answer_ratio" in fg2u.metrics
    assert records[2].settings["oracle_scope"] == "answer"
    assert (out / "smoke_predictions.jsonl").exists()
    for png in ("meta_val_smoke.png", "weights_heatmap_smoke_RGU.png", "weights_heatmap_smoke_FG2U.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    assert "F1 (SGD)" in text and "FG2U" in text and "oracle" in text
    # second run reuses the cached pre-trained base model and appends
    assert main(["--config", "smoke", "--estimators", "uniform", "--out", str(out), "--no-progress"]) == 0
    again = read_records(out / "smoke.jsonl")
    assert len(again) == 6 and again[-1].metrics == records[1].metrics


def test_cli_missing_data_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("FG2U_LM_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="FG2U_LM_DATA"):
        main(["--config", "smoke", "--data", "squad", "--out", str(tmp_path), "--no-progress"])


def test_make_estimator_names_and_settings():
    from fg2u_bench_lm.configs import get_config
    from fg2u_bench_lm.run import make_estimator

    cfg = get_config("cpu")
    est, name, settings, t = make_estimator("fg2u", cfg)
    assert name == "FG2U" and est.num_directions == cfg.fg2u_directions and t == cfg.fg2u_num_steps
    assert settings["distribution"] == "rademacher"
    est, name, settings, t = make_estimator("rgu", cfg)
    assert name == "RGU" and t == cfg.spec.num_steps
    with pytest.raises(ValueError, match="rgu"):
        make_estimator("sgd", cfg)


def test_memory_sweep_stops_at_budget_and_plots(tmp_path, monkeypatch):
    calls = []

    def fake(config, estimator, t, **kw):
        calls.append((estimator, t))
        per_step = 100 * 2**20 if estimator == "rgu" else 0
        return {
            "estimator": estimator,
            "num_steps": t,
            "delta_bytes": 50 * 2**20 + per_step * t,
            "seconds": 0.1,
            "outer_loss": 1.0,
        }

    monkeypatch.setattr(memory, "measure_in_subprocess", fake)
    results = memory.sweep("smoke", (1, 2, 4, 8, 16), (6, 24), budget_bytes=600 * 2**20)
    # rgu: T=1 150 MiB, T=2 250, T=4 450, T=8 850 (predicted 900 < 2 × 600: measured, first over budget),
    # T=16 skipped (T=8 was already over budget)
    assert calls == [("rgu", 1), ("rgu", 2), ("rgu", 4), ("rgu", 8), ("fg2u", 6), ("fg2u", 24)]
    skipped = [r["num_steps"] for r in results if r.get("skipped")]
    assert skipped == [16]
    assert [r["within_budget"] for r in results if not r.get("skipped")] == [True, True, True, False, True, True]
    # a T predicted beyond twice the budget is not run at all
    calls.clear()
    memory.sweep("smoke", (1, 32), (), budget_bytes=600 * 2**20)
    assert calls == [("rgu", 1)]
    png = memory.plot_memory(results, tmp_path / "m.png", 600 * 2**20)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
