"""End to end: the smoke CLI writes a record and a PNG; evaluation reaches high accuracy on an easy set;
configs and estimator names validate their input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fg2u_bench_vision import run
from fg2u_bench_vision.configs import Config, get_config
from fg2u_bench_vision.data import DATA_ENV, DataNotFoundError
from fg2u_bench_vision.estimators import ESTIMATOR_NAMES, build_estimator
from fg2u_bench_vision.evaluate import whole_dataset_reference
from fg2u_bench_vision.model import ConvNet


def test_smoke_run_writes_record_and_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("FG2U_VISION_JAX_CACHE", "off")  # leave the process-wide JAX config alone
    code = run.main(
        [
            "--config",
            "smoke",
            "--estimators",
            "fg2u",
            "--seeds",
            "0",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--meta-steps",
            "2",
            "--no-baselines",
        ]
    )
    assert code == 0
    lines = (tmp_path / "smoke.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["estimator"] for r in records] == ["FG2U"]
    fg = records[-1]
    assert fg["benchmark"] == "vision" and fg["dataset"] == "digits" and fg["task"] == "condensation-ipc1"
    assert fg["settings"]["norm_order"] == "conv-norm-relu" and fg["settings"]["meta_steps"] == 2
    assert 0.0 <= fg["metrics"]["test_accuracy_mean"] <= 100.0 and "test_accuracy_std" in fg["metrics"]
    png = tmp_path / fg["settings"]["image_grid"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fg["metrics"]["meta_step_temp_bytes"] > 0
    out = capsys.readouterr().out
    assert "| digits" in out and "FG2U" in out
    figure = tmp_path / "smoke-digits-ipc1-accuracy-vs-cost.png"
    assert f"-> {figure}" in out and figure.read_bytes().startswith(b"\x89PNG")


def test_cli_missing_data_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(DataNotFoundError, match="t10k-images-idx3-ubyte"):
        run.main(["--config", "smoke", "--dataset", "mnist-test-resplit", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        run.parse_args(["--estimators", "sgd"])


def test_evaluation_on_a_separable_set_reaches_high_accuracy() -> None:
    """Four classes = which quadrant of an 8×8 image is bright, plus noise: trivially separable."""
    rng = np.random.default_rng(0)

    def make(n):
        y = np.arange(n) % 4
        x = 0.2 * rng.random((n, 8, 8, 1)).astype(np.float32)
        for i, c in enumerate(y):
            r, k = divmod(int(c), 2)
            x[i, 4 * r : 4 * r + 4, 4 * k : 4 * k + 4] += 0.8
        return x, y

    x_tr, y_tr = make(8)
    x_te, y_te = make(200)
    # mini-batch path (the whole-data-set reference): 25 epochs of batches of 4 = 50 steps
    res = whole_dataset_reference(
        ConvNet(4, width=8, depth=1),
        x_tr,
        y_tr,
        x_te,
        y_te,
        np.random.default_rng(1),
        num_nets=2,
        epochs=25,
        batch_size=4,
        lr=0.05,
    )
    assert res["mean"] >= 0.95 and len(res["accuracies"]) == 2 and res["steps"] == 50


def test_configs_and_estimator_names() -> None:
    import fg2u.jax as fj

    for name in ("smoke", "cpu", "paper"):
        assert get_config(name).name == name
    assert get_config("paper", ipc=10).meta_lr == 5e-4 and get_config("paper", ipc=1).meta_lr == 1e-2
    with pytest.raises(ValueError, match="unknown config"):
        get_config("huge")
    with pytest.raises(ValueError, match="meta_steps"):
        Config(name="x", meta_steps=0)
    with pytest.raises(ValueError, match="meta_lr_schedule"):
        Config(name="x", meta_lr_schedule="cosine")
    cfg = get_config("cpu")
    # every registered estimator is built by name (a new one needs no edit here)
    built = {n: build_estimator(n, cfg, implicit_scale=4.0) for n in ESTIMATOR_NAMES}
    assert set(ESTIMATOR_NAMES) >= {
        "rgu",
        "fg2u",
        "trgu",
        "hessian_free",
        "neumann",
        "two_phase",
        "hybrid",
        "control_variate",
        "running_control_variate",
    }
    assert built["rgu"] == fj.RGU()
    assert built["fg2u"] == fj.FG2U(num_directions=cfg.num_directions, chunk_size=cfg.chunk_size)
    assert built["trgu"] == fj.TRGU(cfg.truncation)
    assert built["hessian_free"] == fj.Scaled(fj.HessianFree(), 4.0)  # implicit: in meta-gradient units
    assert built["neumann"] == fj.Scaled(fj.Neumann(cfg.neumann_terms), 4.0)
    assert built["two_phase"] == fj.TwoPhase(
        fj.Scaled(fj.HessianFree(), 4.0), built["fg2u"], switch_step=int(cfg.two_phase_fraction * cfg.meta_steps)
    )
    assert built["running_control_variate"].estimator == built["fg2u"]
    assert build_estimator("fg2u", cfg, num_directions=3).num_directions == 3
    with pytest.raises(ValueError, match="unknown estimator"):
        build_estimator("sgd", cfg)
