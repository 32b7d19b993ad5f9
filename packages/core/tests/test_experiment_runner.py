"""fg2u.experiment.runner end to end on a toy benchmark defined here (JAX backend, a quadratic problem, two
tasks, two seeds): records with run id, provenance and the anytime curve; a diverging method recorded as
such while the next one runs; a method that raises recorded as failed with exit code 1; user errors in one
line with exit 2 before any work; run markers; presets; and Ctrl-C in a subprocess (exit 130, one line,
the marker says interrupted).

The problem: T = 4 inner steps θ ← θ − η(θ − φ) from θ = 0, so θ_T = s φ with s = 1 − (1 − η)^T, and the outer
loss ½‖θ_T − y‖² with the task's target y. Its held-out metric ``test_loss`` is the same loss computed by hand
in numpy (an independent oracle of the value the runner records).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import fg2u  # noqa: E402
from fg2u.experiment import Baseline, Experiment, MethodResult, Task, Trial, UsageError, main  # noqa: E402
from fg2u.experiment.loop import curve_steps  # noqa: E402
from fg2u.experiment.provenance import read_run_markers  # noqa: E402
from fg2u.experiment.records import read_records  # noqa: E402

ETA, INNER_STEPS = 0.5, 4
SHRINK = 1.0 - (1.0 - ETA) ** INNER_STEPS  # θ_T = SHRINK * φ


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    name: str
    meta_steps: int
    meta_lr: float
    targets: tuple[float, ...]  # one task per target
    step_sleep: float = 0.0

    def settings(self):
        return {"meta_steps": self.meta_steps, "meta_lr": self.meta_lr}


CONFIGS = {
    "small": ToyConfig("small", meta_steps=6, meta_lr=0.5, targets=(1.0, -2.0)),
    "one": ToyConfig("one", meta_steps=3, meta_lr=0.5, targets=(1.0,)),
    "slow": ToyConfig("slow", meta_steps=10_000, meta_lr=0.1, targets=(1.0,), step_sleep=0.05),
}


def held_out_loss(phi, target):
    return 0.5 * float(np.sum((SHRINK * np.asarray(phi, np.float64) - target) ** 2))


class ToyTrial(Trial):
    curve_metric = "test_loss"
    curve_points = 4
    log_every = 1

    def __init__(self, config: ToyConfig, task: Task, seed: int):
        self.config, self.seed = config, seed
        self.target = float(task.problem_settings["target"])
        self.num_meta_steps = config.meta_steps

    def initial_phi(self):
        return jnp.full((3,), float(self.seed), jnp.float32)

    def meta_optimizer(self):
        return optax.sgd(self.config.meta_lr)

    def make_problem(self, y):
        return fg2u.UnrolledProblem(
            init=lambda p: jnp.zeros_like(p),
            step=lambda th, p, _: th - ETA * (th - p),
            outer_loss=lambda th, p, yy: 0.5 * jnp.sum((th - yy) ** 2),
            num_steps=INNER_STEPS,
            outer_batch=y,
        )

    def next_inputs(self, step):
        if self.config.step_sleep:
            time.sleep(self.config.step_sleep)
        return jax.random.PRNGKey(step), jnp.full((1, 3), self.target, jnp.float32)

    def evaluate(self, phi, *, final):
        loss = held_out_loss(phi, self.target)
        return {"test_loss": loss, "phi_mean": float(np.mean(phi))} if final else {"test_loss": loss}

    def details(self):
        return {"note": "toy"}


def _closed_form(trial: ToyTrial, settings) -> MethodResult:
    """The optimum φ* = y / s: test loss 0 (a yard stick, seed-free)."""
    return MethodResult(metrics={"test_loss": held_out_loss(np.full(3, trial.target / SHRINK), trial.target)})


def _exploder(trial: ToyTrial, settings) -> MethodResult:
    raise RuntimeError(f"boom at seed {trial.seed}")


class Toy(Experiment):
    """A toy benchmark for the runner's tests."""

    name = "toy"
    backend = "jax"
    config_names = tuple(CONFIGS)
    default_config = "small"

    def __init__(self):
        self.trials = 0

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--meta-lr", type=float, default=None)
        parser.add_argument("--late-usage-error", action="store_true")

    def configure(self, args):
        config = CONFIGS[args.config]
        if args.meta_lr is not None:
            if not args.meta_lr > 0:
                raise UsageError(f"--meta-lr must be > 0, got {args.meta_lr}")
            config = dataclasses.replace(config, meta_lr=args.meta_lr)
        self.late_usage_error = args.late_usage_error
        return config

    def default_methods(self, config):
        return ("rgu", "fg2u", "closed_form")

    def presets(self, config):
        return {"fg2u": {"num_directions": 2}}

    def baselines(self):
        return {
            "closed_form": Baseline("ClosedForm", _closed_form, once=True, description="the optimum"),
            "exploder": Baseline("Exploder", _exploder, defaults={"power": 1}, yardstick=False),
        }

    def tasks(self, config):
        return [Task(f"target{t:+g}", "synthetic", {"target": t, "dim": 3}) for t in config.targets]

    def trial(self, config, task, seed):
        self.trials += 1
        if self.late_usage_error:
            raise UsageError("--late-usage-error: data went missing")
        return ToyTrial(config, task, seed)

    def headline(self):
        return "test_loss"


EXPERIMENT = Toy()
DIVERGING = "scaled:estimator=rgu,scale=1e30"  # φ jumps by ~1e30 after step 0: the float32 loss is inf at step 1


def run(argv, capsys=None):
    """``main`` in this process; returns ``(code, out, err)`` (argparse's own errors raise SystemExit)."""
    experiment = Toy()
    try:
        code = main(experiment, ["--no-progress", *argv])
    except SystemExit as error:
        code = error.code
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    return code, out, err, experiment


# ------------------------------------------------------------------------------------------- full runs
@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """``--config small --seeds 0 1`` with a diverging method first, then the defaults' methods."""
    out = tmp_path_factory.mktemp("small")
    argv = ["--seeds", "0", "1", "--out", str(out), "--estimators", DIVERGING, "rgu", "fg2u", "closed_form"]
    experiment = Toy()
    code = main(experiment, ["--no-progress", *argv])
    return code, out, read_records(out / "small.jsonl"), experiment


@pytest.mark.slow
def test_every_run_is_recorded_in_order_and_divergence_is_a_result(small_run):
    code, out, records, experiment = small_run
    assert code == 0  # divergence is a result, not an error
    # 2 tasks x (2 seeds x 3 methods + the seed-free yard stick once) = 14 runs, task-major, method order kept
    assert len(records) == 14 == experiment.trials
    first_task = [(r.seed, r.estimator_spec, r.status) for r in records[:7]]
    diverging = "scaled:estimator=rgu,scale=1e+30"  # the completed spec in its normal form
    assert first_task == [
        (0, diverging, "diverged"),
        (0, "rgu", "ok"),  # the method after the diverged one still runs
        (0, "fg2u:num_directions=2", "ok"),
        (0, "closed_form", "ok"),
        (1, diverging, "diverged"),
        (1, "rgu", "ok"),
        (1, "fg2u:num_directions=2", "ok"),
    ]
    # a scaled estimator keeps its inner estimator's name; its settings tell it apart
    assert records[0].estimator == "RGU" and records[0].estimator_settings["scale"] == 1e30
    assert [r.task for r in records] == ["target+1"] * 7 + ["target-2"] * 7


def test_a_diverged_run_names_its_step(small_run):
    _, _, records, _ = small_run
    diverged = [r for r in records if r.status == "diverged"]
    assert len(diverged) == 4
    for r in diverged:
        assert r.metrics == {"diverged_at_step": 1.0} and r.curve is None
        assert "the outer loss became" in r.details["error"] and "at meta step 1" in r.details["error"]


def test_records_carry_run_id_provenance_settings_and_memory(small_run):
    _, out, records, _ = small_run
    assert len({r.run_id for r in records}) == 1 and records[0].run_id
    p = records[0].provenance
    assert p.command[1:4] == ("--no-progress", "--seeds", "0") and p.accelerator is None
    assert p.git_commit is None or len(p.git_commit) == 40
    rgu = next(r for r in records if r.estimator_spec == "rgu")
    assert rgu.benchmark == "toy" and rgu.config == "small" and rgu.dataset == "synthetic"
    assert rgu.problem_settings == {"target": 1.0, "dim": 3}
    assert rgu.config_settings == {"meta_steps": 6, "meta_lr": 0.5}
    assert rgu.estimator_spec == "rgu" and rgu.estimator_settings == {"estimator": "RGU", "check_finite": False}
    assert rgu.memory.measure == "xla_temp_bytes" and rgu.details["note"] == "toy"
    # the JAX driver adds the forward unroll's memory (the yardstick of "at most 2x a plain unroll" budgets)
    assert 0 < rgu.details["forward_unroll_bytes"] <= rgu.memory.bytes
    assert rgu.metrics["steps_run"] == 6.0 and rgu.metrics["compile_time_s"] > 0
    closed = next(r for r in records if r.estimator == "ClosedForm")
    assert closed.estimator_settings == {"estimator": "ClosedForm"} and closed.memory is None


def test_presets_complete_the_spec(small_run):
    _, _, records, _ = small_run
    fg = next(r for r in records if r.estimator == "FG2U")
    assert fg.estimator_spec == "fg2u:num_directions=2"  # the completed spec is what the record names
    assert fg.estimator_settings["num_directions"] == 2


def test_the_anytime_curve_has_the_requested_points_and_the_final_value(small_run):
    _, _, records, _ = small_run
    for r in (r for r in records if r.status == "ok" and r.estimator != "ClosedForm"):
        assert r.curve.metric == "test_loss" and r.curve.step == curve_steps(6, 4) == (0, 2, 4, 6)
        assert list(r.curve.seconds) == sorted(r.curve.seconds)
        assert r.curve.seconds[0] >= r.metrics["compile_time_s"]  # compilation counts in the anytime time
        # the last point is the final φ's test loss, which the record's metric holds too (same oracle)
        assert r.curve.value[-1] == pytest.approx(r.metrics["test_loss"], rel=1e-12)
        seed_phi = np.full(3, float(r.seed))
        assert r.curve.value[0] == pytest.approx(held_out_loss(seed_phi, r.problem_settings["target"]), rel=1e-6)
    rgu = [r for r in records if r.estimator_spec == "rgu"]
    # exact meta-gradients with meta_lr 0.5 contract φ towards y / s: the test loss falls along the curve
    assert all(r.curve.value[-1] < 0.1 * r.curve.value[0] for r in rgu if r.curve.value[0] > 0)


def test_the_run_marker_says_complete_with_counts(small_run):
    _, out, records, _ = small_run
    (marker,) = read_run_markers(out).values()
    assert marker["run_id"] == records[0].run_id and marker["status"] == "complete"
    assert marker["expected_records"] == marker["written_records"] == 14


def test_a_method_that_raises_is_recorded_as_failed_and_exits_1(tmp_path, capsys):
    code, out, err, _ = run(
        ["--config", "one", "--seeds", "0", "--out", str(tmp_path), "--estimators", "exploder", "closed_form"], capsys
    )
    assert code == 1
    failed, closed = read_records(tmp_path / "one.jsonl")
    assert failed.status == "failed" and failed.metrics == {}
    assert failed.details == {"error": "RuntimeError: boom at seed 0"}
    assert failed.estimator_settings == {"estimator": "Exploder", "power": 1}
    assert closed.status == "ok"  # the next method still ran
    assert "Traceback" in err and "RuntimeError: boom at seed 0" in err  # the error is shown in full
    assert "1 run(s) failed with an error" in out
    (marker,) = read_run_markers(tmp_path).values()
    assert marker["status"] == "failed" and marker["written_records"] == 2


def test_the_summary_counts_runs_that_did_not_finish(tmp_path, capsys):
    code, out, err, _ = run(
        ["--config", "one", "--seeds", "0", "1", "--out", str(tmp_path), "--estimators", DIVERGING], capsys
    )
    assert code == 0
    assert "summary (test_loss: mean ± std over seeds" in out and "(n=0, 2 diverged/failed)" in out
    assert "[diverged] target+1 RGU seed 1" in out


# ------------------------------------------------------------------------------------------ user errors
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--meta-lr", "0"], "--meta-lr must be > 0, got 0.0"),
        (["--estimators", "fg2u:num_dirs=3"], "--estimators 'fg2u:num_dirs=3': FG2U has no setting(s) num_dirs"),
        (["--estimators", "fg2u:num_directions="], "--estimators: estimator spec 'fg2u:num_directions=': expected"),
        (["--estimators", "sgd"], "unknown estimator 'sgd'"),
        (["--estimators", "closed_form:bogus=1"], "ClosedForm has no setting(s) bogus; its settings are none"),
        (["--estimators", "exploder:bogus=1"], "Exploder has no setting(s) bogus; its settings are power"),
        (["--seeds", "-1"], "--seeds takes integers >= 0"),
        (["--config", "huge"], "argument --config: invalid choice: 'huge'"),
    ],
)
def test_user_errors_are_one_line_and_exit_2_before_any_work(tmp_path, capsys, argv, message):
    code, out, err, experiment = run(["--out", str(tmp_path / "out"), *argv], capsys)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert experiment.trials == 0 and not (tmp_path / "out" / "runs").exists()  # nothing ran, no marker


def test_unknown_setting_error_lists_the_valid_ones_and_methods(tmp_path, capsys):
    _, _, err, _ = run(["--out", str(tmp_path), "--estimators", "fg2u:num_dirs=3"], capsys)
    assert "its settings are num_directions, distribution, chunk_size" in err
    assert "(methods: fg2u, " in err and "closed_form, exploder)" in err


def test_an_unwritable_out_fails_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err, experiment = run(["--out", str(blocker / "sub")], capsys)
    assert code == 2 and "cannot write result records to" in err and "choose --out" in err
    assert len(err.strip().splitlines()) == 1 and experiment.trials == 0


def test_a_usage_error_during_the_runs_marks_the_invocation_failed(tmp_path, capsys):
    code, _, err, _ = run(["--config", "one", "--out", str(tmp_path), "--late-usage-error"], capsys)
    assert code == 2 and err.strip().endswith("error: --late-usage-error: data went missing")
    assert len(err.strip().splitlines()) == 1
    (marker,) = read_run_markers(tmp_path).values()
    assert marker["status"] == "failed" and marker["written_records"] == 0 and "data went missing" in marker["note"]


# ---------------------------------------------------------------------------------------------- Ctrl-C
def _start(out: Path) -> subprocess.Popen:
    """This module's toy benchmark in a fresh interpreter (this folder on its path), config ``slow``: a seed-free
    yard stick, then RGU with 10 000 meta steps of 50 ms."""
    here = Path(__file__).resolve()
    code = (
        f"import sys; from {here.stem} import EXPERIMENT; from fg2u.experiment import main; "
        "sys.exit(main(EXPERIMENT, sys.argv[1:]))"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(here.parent), *sys.path]))
    argv = ["--config", "slow", "--no-progress", "--out", str(out), "--estimators", "closed_form", "rgu"]
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_ctrl_c_exits_130_with_one_line_and_marks_the_run_interrupted(tmp_path):
    process = _start(tmp_path)
    records = tmp_path / "slow.jsonl"
    deadline = time.monotonic() + 120
    try:
        while not (records.exists() and records.read_text().count("\n") >= 1):  # the yard stick's record
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the toy benchmark wrote no record in 120 s"
            time.sleep(0.1)
        time.sleep(1.0)  # into RGU's compilation or its loop
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted (Ctrl-C) after 1 of 2 run(s)" in lines[0], err
    assert "labelled partial" in lines[0] and "Traceback" not in err
    (written,) = read_records(records)
    assert written.estimator == "ClosedForm"
    (marker,) = read_run_markers(tmp_path).values()
    assert marker["status"] == "interrupted" and (marker["expected_records"], marker["written_records"]) == (2, 1)
    assert marker["run_id"] == written.run_id and marker["run_id"] in lines[0]
