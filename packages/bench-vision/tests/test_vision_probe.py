"""The gradient-quality probe (tiny settings) and the paper-regime configurations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fg2u_bench_vision import probe as vp
from fg2u_bench_vision.configs import CONFIG_NAMES, get_config
from fg2u_bench_vision.data import load_digits


def _tiny():
    return get_config("smoke").replace(real_batch=32)


def test_parse_estimator_specs() -> None:
    cfg = _tiny()
    assert vp.parse_estimator("rgu", cfg).label == "RGU"
    assert vp.parse_estimator("trgu:3", cfg).get("truncation") == 3
    assert vp.parse_estimator("neumann", cfg).overrides == ()  # num_terms from the config when built
    choice = vp.parse_estimator("fg2u:32:8", cfg)
    assert (choice.get("num_directions"), choice.get("chunk_size"), choice.label) == (32, 8, "FG2U b=32 chunk=8")
    assert vp.parse_estimator("FG2U:num_directions=4", cfg).label == "FG2U b=4"
    assert vp.parse_estimator("hybrid:8:10", cfg).overrides == (("num_directions", 8), ("reverse_steps", 10))
    for bad in ("sgd", "fg2u:0", "fg2u:x", "rgu:3", "trgu:K=3", "fg2u:1:2:3"):
        with pytest.raises(ValueError, match="spec"):
            vp.parse_estimator(bad, cfg)


def test_probe_exact_estimators_match_the_reference() -> None:
    """RGU and TRGU with K ≥ T are the exact meta-gradient: cosine 1, relative error ≈ 0 in float32."""
    data, cfg = load_digits(), _tiny()
    phi = np.random.default_rng(0).uniform(size=(10, 8, 8, 1)).astype(np.float32)
    out = dict((c.label, q) for c, q in vp.probe(data, cfg, phi, 2, ["rgu", "trgu:5"], repeats=2, seed=1))
    assert out["RGU"].cosine_mean == pytest.approx(1.0, abs=1e-6) and out["RGU"].num_repeats == 2
    assert out["TRGU K=5"].relative_error_mean < 1e-5
    assert out["TRGU K=5"].settings == {"estimator": "TRGU", "truncation": 5, "check_finite": False}


def test_implicit_estimators_are_rescaled_like_the_benchmark() -> None:
    """Hessian-free / Neumann are built as the benchmark builds them: Scaled by 1/η_{T−1}."""
    import fg2u.jax as fj
    from fg2u_bench_vision.condensation import implicit_rescale, setup_from_config

    cfg = _tiny().replace(inner_steps=3)
    scale = implicit_rescale(setup_from_config(cfg, (8, 8, 1), 10))
    est, settings = vp.build_probe_estimator(vp.parse_estimator("hessian_free", cfg), cfg, scale)
    assert est == fj.Scaled(fj.HessianFree(), scale)
    assert settings == {"estimator": "HessianFree", "alpha": 1.0, "check_finite": False, "scale": scale}
    neumann, settings = vp.build_probe_estimator(vp.parse_estimator("neumann:2", cfg), cfg, scale)
    assert settings["num_terms"] == 2 and settings["scale"] == scale
    cv, _ = vp.build_probe_estimator(vp.parse_estimator("control_variate:scale=1.0", cfg), cfg, scale)
    assert cv.surrogate == fj.Scaled(fj.HessianFree(), scale) and cv.scale == 1.0


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
            "fg2u:2",
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
    quality = [r for r in records if r["settings"]["measure"] == "quality"]
    speed = [r for r in records if r["settings"]["measure"] == "throughput"]
    assert [(r["config"], r["estimator"]) for r in quality] == [("probe-T2", "RGU"), ("probe-T2", "FG2U b=2")]
    assert all(r["task"] == "gradient-quality-ipc1" and r["dataset"] == "digits" for r in records)
    assert quality[0]["metrics"]["cosine_mean"] == pytest.approx(1.0, abs=1e-6)
    assert quality[1]["settings"]["inner_steps"] == 2 and quality[1]["settings"]["phi"] == "after 1 RGU meta steps"
    for r in quality:
        assert {
            "cosine_mean",
            "cosine_std",
            "relative_error_mean",
            "norm_ratio_mean",
            "memory_bytes",
            "seconds_per_estimate",
        } <= set(r["metrics"])
    assert [r["settings"]["estimator_settings"]["chunk_size"] for r in speed] == [1]
    assert -1.0 <= quality[1]["metrics"]["cosine_mean"] <= 1.0
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
    with pytest.raises(ValueError, match="spec"):
        vp.main(["--estimators", "sgd", "--out", "/nonexistent-never-written"])


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
