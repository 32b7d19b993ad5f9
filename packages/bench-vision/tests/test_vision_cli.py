"""End to end: the smoke CLI writes a record, its curve and a PNG; user errors are one line with exit 2;
evaluation reaches high accuracy on an easy set; configs and the benchmark's presets build every estimator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fg2u.experiment import main
from fg2u.experiment.spec import build, completed
from fg2u_bench_vision.configs import Config, get_config
from fg2u_bench_vision.data import DATA_ENV, load_digits
from fg2u_bench_vision.evaluate import whole_dataset_reference
from fg2u_bench_vision.experiment import EXPERIMENT, VisionConfig
from fg2u_bench_vision.model import ConvNet


def test_smoke_run_writes_record_curve_and_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("FG2U_VISION_JAX_CACHE", "off")  # leave the process-wide JAX config alone
    argv = ["--config", "smoke", "--seeds", "0", "--out", str(tmp_path), "--no-progress", "--meta-steps", "6"]
    code = main(EXPERIMENT, [*argv, "--estimators", "fg2u", "random_real"])
    assert code == 0
    records = [json.loads(line) for line in (tmp_path / "smoke.jsonl").read_text().splitlines()]
    assert [r["estimator"] for r in records] == ["FG2U", "RandomReal"]
    fg = records[0]
    assert fg["benchmark"] == "vision" and fg["dataset"] == "digits" and fg["task"] == "condensation-ipc1"
    assert fg["schema_version"] == 2 and fg["status"] == "ok" and fg["estimator_spec"].startswith("fg2u:")
    assert fg["problem_settings"]["norm_order"] == "conv-norm-relu" and fg["config_settings"]["meta_steps"] == 6
    assert fg["estimator_settings"]["num_directions"] == get_config("smoke").num_directions  # the preset
    # the anytime curve: 7 points from step 0 to 6, seconds non-decreasing, accuracies in [0, 100]
    curve = fg["curve"]
    assert curve["metric"] == "test_accuracy" and curve["step"] == [0, 1, 2, 3, 4, 5, 6]
    assert all(a <= b for a, b in zip(curve["seconds"], curve["seconds"][1:]))
    assert all(0.0 <= v <= 100.0 for v in curve["value"])
    assert fg["memory"]["measure"] == "xla_temp_bytes" and fg["memory"]["bytes"] > 0
    assert fg["run_id"] == records[1]["run_id"] and fg["provenance"]["command"]
    marker = json.loads((tmp_path / "runs" / f"{fg['run_id']}.json").read_text())
    assert marker["status"] == "complete" and marker["written_records"] == 2 == marker["expected_records"]
    png = tmp_path / "smoke-digits-ipc1-FG2U-seed0.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "FG2U seed 0" in out and "summary" in out
    figure = tmp_path / "smoke-digits-ipc1-accuracy-vs-cost.png"
    assert f"-> {figure}" in out and figure.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--estimators", "sgd"], "unknown estimator 'sgd'"),
        (["--estimators", "fg2u:num_directions=0"], "num_directions"),
        (["--estimators", "fg2u:num_directions="], "expected a value"),
        (["--ipc", "0"], "--ipc must be >= 1"),
        (["--ipc", "200"], "--ipc 200: digits has only"),
        (["--meta-steps", "0"], "--meta-steps"),
        (["--seeds", "-1"], "--seeds takes integers >= 0"),
        (["--dataset", "mnist-test-resplit"], "t10k-images-idx3-ubyte"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, message, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv("FG2U_VISION_JAX_CACHE", "off")
    try:
        code = main(EXPERIMENT, ["--config", "smoke", "--out", str(tmp_path / "out"), *argv])
    except SystemExit as exit_:  # argparse's own errors (bad types)
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "smoke.jsonl").exists()  # nothing ran


def test_an_unwritable_out_folder_fails_before_any_work(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(EXPERIMENT, ["--config", "smoke", "--out", str(blocker / "sub")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write result records" in err and "--out" in err


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


def test_configs_and_presets_build_every_estimator() -> None:
    import fg2u.estimators
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
    vc = VisionConfig(cfg, load_digits(), "noise")
    scale = EXPERIMENT._implicit_scale(vc)

    def make(text: str):
        return build(completed(text, lambda s: EXPERIMENT.complete(s, vc)), fj.BACKEND)

    # every registered estimator is built by name with the config's presets (a new one needs no edit here)
    names = [n for n in fg2u.estimators.names() if n not in ("scaled", "hybrid", "implicit")]
    built = {n: make(n) for n in names}
    assert built["rgu"] == fj.RGU()
    assert built["fg2u"] == fj.FG2U(num_directions=cfg.num_directions, chunk_size=cfg.chunk_size)
    assert built["trgu"] == fj.TRGU(cfg.truncation)
    assert built["hessian_free"] == fj.Scaled(fj.HessianFree(), scale)  # implicit: in meta-gradient units
    assert built["neumann"] == fj.Scaled(fj.Neumann(cfg.neumann_terms), scale)
    assert built["two_phase"] == fj.TwoPhase(
        fj.Scaled(fj.HessianFree(), scale), built["fg2u"], switch_step=int(cfg.two_phase_fraction * cfg.meta_steps)
    )
    assert built["running_control_variate"].estimator == built["fg2u"]
    assert make("fg2u:num_directions=3").num_directions == 3
    # an explicit scaled replaces the automatic one instead of scaling twice
    assert make("scaled:estimator=hessian_free,scale=2.0") == fj.Scaled(fj.HessianFree(), 2.0)
    assert make("two_phase:second=fg2u(num_directions=7)").second.num_directions == 7
