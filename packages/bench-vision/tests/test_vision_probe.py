"""The gradient-quality probe (tiny settings) and the paper-regime configurations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fg2u_bench_vision import plots
from fg2u_bench_vision import probe as vp
from fg2u_bench_vision.configs import CONFIG_NAMES, get_config
from fg2u_bench_vision.data import load_digits


class SimpleRecord:
    """The two fields :func:`plots.settings_label` reads, from a record's JSON."""

    def __init__(self, data: dict) -> None:
        self.estimator, self.estimator_settings = data["estimator"], data["estimator_settings"]


def _tiny():
    return get_config("smoke").replace(real_batch=32)


def test_probe_exact_estimators_match_the_reference() -> None:
    """RGU and TRGU with K ≥ T are the exact meta-gradient: cosine 1, relative error ≈ 0 in float32."""
    data, cfg = load_digits(), _tiny()
    phi = np.random.default_rng(0).uniform(size=(10, 8, 8, 1)).astype(np.float32)
    out = dict(vp.probe(data, cfg, phi, 2, ["rgu", "trgu:truncation=5"], repeats=2, seed=1))
    assert out["rgu"].cosine_mean == pytest.approx(1.0, abs=1e-6) and out["rgu"].num_repeats == 2
    # float32 round-off of a two-step unroll: the same operations in another order, relative error ~1e-7
    assert out["trgu:truncation=5"].relative_error_mean < 1e-5
    assert out["trgu:truncation=5"].settings == {"estimator": "TRGU", "truncation": 5, "check_finite": False}


def test_implicit_estimators_are_rescaled_like_the_benchmark() -> None:
    """Hessian-free / Neumann are built as the benchmark builds them: Scaled by 1/η_{T−1}."""
    import fg2u.jax as fj
    from fg2u_bench_vision.condensation import implicit_rescale, setup_from_config

    cfg, data = _tiny().replace(inner_steps=3), load_digits()
    scale = implicit_rescale(setup_from_config(cfg, (8, 8, 1), 10))
    est, spec = vp.build_probe_estimator("hessian_free", cfg, data)
    assert est == fj.Scaled(fj.HessianFree(), scale) and spec == f"scaled:estimator=hessian_free,scale={scale!r}"
    neumann, _ = vp.build_probe_estimator("neumann:num_terms=2", cfg, data)
    assert neumann.settings()["num_terms"] == 2 and neumann.settings()["scale"] == scale
    cv, _ = vp.build_probe_estimator("control_variate:scale=1.0", cfg, data)
    assert cv.surrogate == fj.Scaled(fj.HessianFree(), scale) and cv.scale == 1.0
    with pytest.raises(ValueError, match="'sgd'"):
        vp.build_probe_estimator("sgd", cfg, data)


def test_probe_cli_writes_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("FG2U_VISION_JAX_CACHE", "off")
    monkeypatch.delenv("FG2U_VISION_DATA", raising=False)
    code = vp.main(
        [
            "--config",
            "smoke",
            "--real-batch",
            "32",
            "--inner-steps",
            "2",
            "--repeats",
            "2",
            "--estimators",
            "rgu",
            "fg2u:num_directions=2",
            "--throughput-directions",
            "2",
            "--chunk-sizes",
            "1",
            "--throughput-steps",
            "2",
            "--phi-steps",
            "1",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 0
    records = [json.loads(line) for line in (tmp_path / "probe.jsonl").read_text().splitlines()]
    quality = [r for r in records if r["config_settings"]["measure"] == "quality"]
    speed = [r for r in records if r["config_settings"]["measure"] == "throughput"]
    assert [(r["config"], r["estimator"]) for r in quality] == [("probe-T2", "RGU"), ("probe-T2", "FG2U")]
    assert [plots.settings_label(SimpleRecord(r)) for r in quality] == ["RGU", "FG2U b=2"]
    assert all(r["task"] == "gradient-quality-ipc1" and r["dataset"] == "digits" for r in records)
    assert quality[0]["metrics"]["cosine_mean"] == pytest.approx(1.0, abs=1e-6)
    ps = quality[1]["problem_settings"]
    assert ps["inner_steps"] == 2 and ps["phi"] == "after 1 RGU meta steps"
    assert quality[1]["estimator_spec"] == "fg2u:num_directions=2,chunk_size=none"
    for r in quality:
        assert {
            "cosine_mean",
            "cosine_std",
            "relative_error_mean",
            "norm_ratio_mean",
            "seconds_per_estimate",
        } <= set(r["metrics"])
        assert r["memory"]["measure"] == "xla_temp_bytes" and r["memory"]["bytes"] > 0
    assert [r["estimator_settings"]["chunk_size"] for r in speed] == [1]
    # FG2U with b = 2 of N = 640 pixels: a single estimate's cosine is ≈ sqrt(b/N) ≈ 0.06, and it is the mean
    # over 2 draws; it must be neither the exact 1 nor undefined
    assert 0.0 < abs(quality[1]["metrics"]["cosine_mean"]) < 0.9
    assert all(r["metrics"]["directions_per_second"] > 0 for r in speed)
    out = capsys.readouterr().out
    assert "FG2U throughput" in out
    figure = tmp_path / "gradient-quality.png"  # drawn after the run from probe.jsonl
    assert f"figure -> {figure}" in out and figure.read_bytes().startswith(b"\x89PNG")
    figure.unlink()
    assert vp.main(["--plot-only", "--out", str(tmp_path)]) == 0 and figure.is_file()
    assert vp.main(["--plot-only", "--out", str(tmp_path / "empty")]) == 2  # no records: a clear error
    assert "run the probe first" in capsys.readouterr().err


def test_probe_cli_rejects_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        vp.parse_args(["--repeats", "0"])
    with pytest.raises(SystemExit):
        vp.parse_args(["--inner-steps", "0"])
    assert vp.main(["--estimators", "sgd", "--out", "/nonexistent-never-written"]) == 2


def test_paper_regime_configs() -> None:
    assert {"cpu", "cpu-t100", "cpu-t10", "smoke", "paper"} <= set(CONFIG_NAMES)
    for name in ("cpu-t100", "cpu"):
        cfg = get_config(name)
        assert cfg.inner_steps == 100 and cfg.name == name and cfg.truncation == 25
        assert cfg.num_directions * cfg.grad_accumulation >= 16  # directions per meta step
    regime = get_config("cpu-t100")
    assert regime.num_directions * regime.grad_accumulation == 128 and regime.real_batch == 512
    assert get_config("cpu-t100", ipc=10).meta_lr < regime.meta_lr
    assert get_config("cpu-t10").inner_steps == 10  # the old short-horizon config, not the headline
