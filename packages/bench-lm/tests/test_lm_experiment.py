"""The benchmark on the core's runner: the smoke CLI end to end (v2 records, anytime curve, figures), one test
per user error (one line, exit 2, nothing run), a diverging evaluation recorded as such, warm starts from
saved weight models, the memory sweep in fresh processes, and the trial's meta-training (carried base model,
frozen backbone)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from fg2u.experiment import UsageError, main, read_records
from fg2u.torch import RGU
from fg2u.torch.harness import Driver
from fg2u_bench_lm import camels
from fg2u_bench_lm.configs import CONFIG_NAMES, LMConfig, get_config
from fg2u_bench_lm.experiment import EXPERIMENT, CamelsTrial
from fg2u_bench_lm.prepare import LMRun, SeedSetup
from fg2u_bench_lm.weights import check_matches, save_weights

PNG = b"\x89PNG\r\n\x1a\n"


def _run(tmp_path: Path, *argv: str) -> int:
    return main(
        EXPERIMENT,
        [
            "--config",
            "smoke",
            "--out",
            str(tmp_path / "lm"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-progress",
            *argv,
        ],
    )


def test_smoke_run_writes_v2_records_curves_and_figures(tmp_path: Path, capsys) -> None:
    assert _run(tmp_path, "--seeds", "0", "--meta-steps", "5", "--predictions") == 0
    records = read_records(tmp_path / "lm" / "smoke.jsonl")  # the v2 reader: every field checked
    assert [r.estimator for r in records] == ["base", "uniform", "oracle", "RGU", "RGUCheckpointed", "FG2U"]
    for r in records:
        assert (r.benchmark, r.task, r.dataset, r.config, r.seed, r.status) == (
            "lm",
            "camels",
            "synthetic-sparse-facts",
            "smoke",
            0,
            "ok",
        )
        for key in ("em", "em_prefix", "f1", "em_sgd", "f1_sgd"):  # both protocols
            assert 0.0 <= r.metrics[key] <= 100.0
        assert r.problem_settings == records[0].problem_settings  # one problem for every method
        assert r.config_settings["inner_steps"] == 2 and r.config_settings["meta_steps"] == 5
    base, uniform, oracle, rgu, checkpointed, fg2u = records
    assert uniform.estimator_settings["sgd_weight"] == pytest.approx(math.log(2) / 3)
    assert oracle.estimator_settings["scope"] == "answer"
    assert fg2u.estimator_spec == "fg2u:num_directions=2,chunk_size=none"  # the smoke preset fills the spec
    assert fg2u.estimator_settings["num_directions"] == 2 and rgu.estimator_settings["estimator"] == "RGU"
    for r in (rgu, checkpointed, fg2u):
        # the anytime curve: >= 6 points from step 0 to the last, seconds non-decreasing
        assert r.curve is not None and r.curve.metric == "val_meta_objective"
        assert r.curve.step == (0, 1, 2, 3, 4, 5)
        assert all(a <= b for a, b in zip(r.curve.seconds, r.curve.seconds[1:]))
        assert r.metrics["val_outer_loss_before"] == r.curve.value[0]
        assert r.memory is not None and r.memory.measure == "peak_rss_growth" and r.memory.bytes > 0
        assert "test_weight_answer_ratio" in r.metrics and r.details["weight_params"] > 0
    # RGUCheckpointed recomputes the same float32 operations as RGU: the same meta-gradients, so the same
    # validation curve up to the summation order of the recomputed segments (relative 1e-5 ≫ float32's 1e-7)
    assert checkpointed.curve.value == pytest.approx(rgu.curve.value, rel=1e-5)
    assert base.curve is None and base.metrics["f1_sgd"] == base.metrics["f1"]  # no adaptation: one answer
    out = tmp_path / "lm"
    for png in ("meta_val_smoke.png", "weights_heatmap_smoke_RGU-seed0.png", "weights_heatmap_smoke_FG2U-seed0.png"):
        assert (out / png).read_bytes().startswith(PNG), png
    predictions = [json.loads(line) for line in (out / "smoke_predictions.jsonl").read_text().splitlines()]
    assert {p["estimator"] for p in predictions} == {r.estimator for r in records}
    text = capsys.readouterr().out
    assert "F1 (SGD)" in text and "summary (f1" in text
    # a second invocation reads the pre-trained base model from the cache and appends: same numbers
    assert _run(tmp_path, "--seeds", "0", "--estimators", "uniform") == 0
    again = read_records(out / "smoke.jsonl")
    assert len(again) == 7 and again[-1].metrics["f1"] == uniform.metrics["f1"]
    assert again[-1].metrics["pretrain_final_loss"] == uniform.metrics["pretrain_final_loss"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "squad"], "FG2U_LM_DATA"),
        (["--data", "streamingqa", "--data-file", "missing.jsonl"], "file not found: missing.jsonl"),
        (["--data", "squad-dev", "--memory-sweep"], "--memory-sweep measures on the synthetic stream"),
        (["--inner-steps", "0"], "--inner-steps: inner_steps (T) must be an integer >= 1"),
        (["--inner-steps", "8"], "the validation meta-objective unrolls 8 documents"),
        (["--meta-steps", "0"], "--meta-steps: meta_steps must be an integer >= 1"),
        (["--grad-accum", "0"], "--grad-accum: grad_accum must be an integer >= 1"),
        (["--outer-lr", "0"], "--outer-lr: outer_lr must be > 0"),
        (["--eval-lr", "-1"], "--eval-lr: eval_lr must be > 0"),
        (["--carry-reset", "0"], "--carry-reset: carry_reset must be None or an integer >= 1"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--heatmap-docs", "-1"], "--heatmap-docs must be >= 0"),
        (["--memory-sweep", "--memory-steps", "0"], "--memory-steps takes T >= 1"),
        (["--memory-sweep", "--estimators", "uniform"], "--memory-sweep measures meta-gradient estimators"),
        (["--warm-start", "nowhere/w-seed{seed}.pt"], "no file matches for seed 0"),
        (["--data", "streamingqa", "--data-file", __file__, "--documents-file", "nowhere.jsonl"], "nowhere.jsonl: no"),
        (["--estimators", "fg2u:num_direction=3"], "num_direction"),
        (["--estimators", "sgd"], "unknown estimator 'sgd'"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, message, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("FG2U_LM_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    try:
        code = _run(tmp_path, *argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "lm" / "smoke.jsonl").exists()  # nothing ran


def test_warm_starts_that_name_no_single_weight_model_of_this_config_are_refused(tmp_path: Path, capsys) -> None:
    phi = {"head.2.bias": torch.zeros(1)}
    first = save_weights(tmp_path / "w-seed0.pt", phi, {"weight_backbone": "base", "weight_model_size": "tiny"})
    assert _run(tmp_path, "--warm-start", str(tmp_path / "w-seed{seed}.pt")) == 2
    err = capsys.readouterr().err
    assert "saved with weight_backbone 'base', this config has 'fresh'" in err and "--weight-backbone base" in err
    second = save_weights(first, phi, {})  # the same name again: written next to it, as w-seed0-2.pt
    assert _run(tmp_path, "--warm-start", str(tmp_path / "w-seed{seed}*.pt")) == 2
    assert "2 files match" in capsys.readouterr().err
    torch.save({"weights": phi}, second)
    assert _run(tmp_path, "--warm-start", str(second)) == 2
    assert "not a weight model saved by this benchmark (no 'phi')" in capsys.readouterr().err
    second.write_text("not a torch file")
    assert _run(tmp_path, "--warm-start", str(second)) == 2
    assert "cannot be read as a saved weight model" in capsys.readouterr().err


def test_a_warm_start_of_other_shapes_is_refused(tiny, tmp_path: Path) -> None:
    trial = _trial(tiny)
    phi = trial.initial_phi()
    path = save_weights(tmp_path / "w.pt", {"head.2.bias": torch.zeros(3)}, {})
    with pytest.raises(UsageError, match="its parameters differ from this weight model's"):
        check_matches(str(path), torch.load(path, weights_only=True), phi)


def test_a_diverging_evaluation_is_recorded_as_diverged(tmp_path: Path, capsys) -> None:
    """--eval-lr 1e30: Adam's first step multiplies the parameters' scale by ~1e30, the next loss is not
    finite: the run is recorded with status "diverged" (not as EM 0 / F1 0) and the exit code stays 0."""
    assert _run(tmp_path, "--estimators", "uniform", "rgu", "--meta-steps", "1", "--eval-lr", "1e30") == 0
    records = read_records(tmp_path / "lm" / "smoke.jsonl")
    assert [(r.estimator, r.status) for r in records] == [("uniform", "diverged"), ("RGU", "diverged")]
    for r in records:
        assert "f1" not in r.metrics and "--eval-lr" in r.details["error"]
    assert "(n=0, 1 diverged/failed)" in capsys.readouterr().out


@pytest.mark.slow
def test_warm_start_continues_from_the_saved_weight_model(tmp_path: Path) -> None:
    assert _run(tmp_path, "--seeds", "0", "1", "--estimators", "rgu", "--save-weights") == 0
    saved = sorted((tmp_path / "lm" / "weights").glob("smoke-RGU-seed*-*.pt"))
    assert [p.name.split("-")[2] for p in saved] == ["seed0", "seed1"]
    pattern = str(tmp_path / "lm" / "weights" / "smoke-RGU-seed{seed}-*.pt")
    assert _run(tmp_path, "--seeds", "0", "1", "--estimators", "fg2u", "--warm-start", pattern, "--tag", "warm") == 0
    first = read_records(tmp_path / "lm" / "smoke.jsonl")
    second = read_records(tmp_path / "lm" / "smoke-warm.jsonl")
    for a, b in zip(first, second):
        # the same fixed validation tasks at the same φ: phase 2 starts exactly where phase 1 ended
        assert b.curve.value[0] == a.curve.value[-1]
        assert b.details["warm_start"]["run_id"] == a.run_id and b.details["warm_start"]["seed"] == a.seed
        assert len(b.details["warm_start"]["sha256"]) == 64
    assert second[0].config_settings["warm_start"] == pattern
    # a saved weight model is never overwritten
    again = save_weights(saved[0], {"x": torch.ones(1)}, {})
    assert again.name.endswith("-2.pt") and torch.load(saved[0], weights_only=True)["meta"]["seed"] == 0


@pytest.mark.slow
def test_memory_sweep_measures_each_estimator_and_T_in_a_fresh_process(tmp_path: Path) -> None:
    args = ("--memory-sweep", "--memory-steps", "1", "3", "--estimators", "rgu", "fg2u")
    assert _run(tmp_path, *args) == 0
    records = read_records(tmp_path / "lm" / "smoke.jsonl")
    assert [(r.task, r.estimator, r.problem_settings["num_steps"]) for r in records] == [
        ("memory", "RGU", 1),
        ("memory", "FG2U", 1),
        ("memory", "RGU", 3),
        ("memory", "FG2U", 3),
    ]
    for r in records:
        assert r.memory.measure == "peak_rss_growth" and r.metrics["peak_memory_mib"] == r.memory.bytes / 2**20
        assert r.metrics["within_budget"] == float(r.memory.bytes <= get_config("smoke").memory_budget_bytes)
        assert r.details["peak_reset"] is True and r.config_settings == {"memory_budget_bytes": 2**30}
    by = {(r.estimator, r.problem_settings["num_steps"]): r for r in records}
    # every child builds the same problem at a T: the same outer loss for both estimators
    for t in (1, 3):
        assert by["RGU", t].metrics["outer_loss"] == pytest.approx(by["FG2U", t].metrics["outer_loss"], rel=1e-6)
    # RGU keeps every inner step for its backward pass: 2 more documents' activations (several MiB at this
    # size) against an RSS noise of well under 1 MiB in a fresh process with a fixed mmap threshold
    assert by["RGU", 3].memory.bytes > by["RGU", 1].memory.bytes + 2**20
    assert (tmp_path / "lm" / "memory_vs_T_smoke.png").read_bytes().startswith(PNG)


def _trial(tiny, **changes) -> CamelsTrial:
    tok, base, _, spec, _, splits = tiny
    config = get_config("smoke").replace(spec=spec, n_positions=64, grad_accum=1, **changes)
    return CamelsTrial(LMRun(config=config), SeedSetup(splits, tok, base, 0.0, 0.0), seed=0, show_progress=False)


def test_a_validation_stream_shorter_than_its_tasks_is_a_user_error(tiny) -> None:
    trial = _trial(tiny)  # the tiny streams have no meta-validation document
    trial.initial_phi()
    with pytest.raises(UsageError, match="the meta-validation stream has 0"):
        trial.evaluate(trial.phi, final=False)


def test_trial_carries_the_base_model_across_meta_steps(tiny, monkeypatch) -> None:
    """carry_reset=4 with T = 2: the second task starts where the first task's inner loop ended under φ₀
    (against an explicit unroll), and the base model is reset after 4 documents (before the third task)."""
    from fg2u.torch import unroll

    starts = []
    real = camels.make_task

    def spy(*args, theta_start=None, **kwargs):
        problem = real(*args, theta_start=theta_start, **kwargs)
        starts.append((theta_start, problem))
        return problem

    monkeypatch.setattr(camels, "make_task", spy)
    trial = _trial(tiny, carry_reset=4)
    prepared = Driver().prepare(RGU(), trial)
    phi_before = {k: v.clone() for k, v in trial.phi.items()}
    carry = prepared.carry
    for i in range(3):
        carry, loss = prepared.step(carry, i)
        assert math.isfinite(float(loss))
    assert starts[0][0] is None and starts[2][0] is None
    carried, expected = starts[1][0], unroll(starts[0][1], phi_before)
    assert all(torch.allclose(carried[k], expected[k], atol=1e-6) for k in expected)
    assert not torch.allclose(carried["transformer.wte.weight"], tiny[1].transformer.wte.weight)


def test_trial_with_a_frozen_backbone_meta_learns_the_head_only(tiny) -> None:
    trial = _trial(tiny, weight_backbone="base-frozen")
    prepared = Driver().prepare(RGU(), trial)
    backbone = {k: v.clone() for k, v in trial.weight_model.backbone.state_dict().items()}
    head = trial.weight_model.head[2].weight.detach().clone()
    carry = prepared.carry
    for i in range(2):
        carry, _ = prepared.step(carry, i)
    assert all(k.startswith("head.") for k in trial.phi)
    assert all(torch.equal(trial.weight_model.backbone.state_dict()[k], v) for k, v in backbone.items())
    assert not torch.equal(trial.weight_model.head[2].weight, head)


def test_every_config_is_valid_and_round_trips() -> None:
    for name in CONFIG_NAMES:
        config = get_config(name)
        assert LMConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
        assert config.validation_spec.num_steps <= config.num_meta_val  # the anytime curve can be drawn
    two = get_config("cpu-two-phase")
    # the paper's phase 2 (Table F.2; the authors' conf/task/train.yaml): 8 directions, Adam 2.5e-6 (8
    # accumulated estimates here, 32 in the paper: the CPU budget)
    assert (two.presets()["fg2u"]["num_directions"], two.grad_accum, two.outer_lr) == (8, 8, 2.5e-6)
    assert two.warm_start == "cpu-warmup" and get_config("cpu-warmup").save_weights
    with pytest.raises(ValueError, match="unknown config 'gpu'"):
        get_config("gpu")
