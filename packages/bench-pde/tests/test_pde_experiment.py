"""The benchmark on the core's runner, end to end (smoke config), and its one-line errors for bad input."""

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fg2u import BlackBoxProblem
from fg2u.experiment import main, read_records
from fg2u_bench_pde import configs
from fg2u_bench_pde.experiment import EXPERIMENT, PDE, GroundTruth, PdeConfig, SpectralTrial, costs_to_reach
from fg2u_bench_pde.spectral import SpectralSettings

BASELINES = Path(__file__).resolve().parents[3] / "results" / "baselines" / "pde.jsonl"


def run(argv, tmp_path):
    """``python -m fg2u_bench_pde ARGV --out tmp_path --no-progress`` in-process (a fresh experiment)."""
    return main(PDE(), [*argv, "--out", str(tmp_path), "--no-progress"])


def by_estimator(path):
    return {r.estimator: r for r in read_records(path)}


@pytest.mark.slow
def test_smoke_run_writes_records_with_costs_read_off_the_curve(tmp_path):
    methods = ["fg2u_zo", "least_squares", "nelder_mead", "rgu_checkpointed"]
    argv = ["--config", "smoke", "--equations", "kdv", "--estimators", *methods, "--seeds", "0", "--init-scan", "3"]
    assert run(argv + ["--outer-steps", "6"], tmp_path) == 0
    records = by_estimator(tmp_path / "smoke.jsonl")
    assert set(records) == {"FG2U_ZO", "LeastSquares", "NelderMead", "RGUCheckpointed"}
    zo = records["FG2U_ZO"]
    assert (zo.benchmark, zo.task, zo.dataset, zo.config, zo.status) == ("pde", "kdv", "kdv-solver", "smoke", "ok")
    p = zo.problem_settings
    assert (p["setting"], p["observation_layout"], p["num_observations"], p["unknowns"], p["solver"]) == (
        "paper",
        "grid",
        64,
        1,
        "spectral",
    )
    s = zo.estimator_settings
    assert (s["estimator"], s["num_directions"], s["scheme"], s["eps"]) == ("FG2U_ZO", 1, "forward", 1e-4)
    assert zo.config_settings["init_scan"] == 3 and zo.config_settings["deviation"].startswith("init_scan")
    assert zo.details["problem_form"] == "black box" and zo.memory.measure == "xla_temp_bytes"
    # the curve: every meta step, the solver calls 3 + 1 (scan) + 2 per forward-difference step
    curve = zo.curve
    assert curve.metric == "relative_coefficient_error" and curve.step == tuple(range(7))
    assert curve.cost["solver_calls"] == tuple(4.0 + 2 * k for k in range(7))
    assert curve.value[-1] == pytest.approx(zo.metrics["relative_coefficient_error"], rel=1e-12)
    m = zo.metrics
    assert abs(m["coefficient"] - 0.0025) < abs(m["initial_coefficient"] - 0.0025) and m["target_coefficient"] == 0.0025
    # the cost metrics are the first crossings of the curve (recomputed here independently)
    for record in records.values():
        c = record.curve
        for label, tau in (("1pct", 0.01), ("0.1pct", 0.001)):
            hits = [i for i, v in enumerate(c.value) if v < tau]
            want = c.cost["solver_calls"][hits[0]] if hits else math.nan
            got = record.metrics[f"solver_calls_to_{label}"]
            assert got == want or (math.isnan(got) and math.isnan(want)), (record.estimator, label)
    # the white-box estimator differentiates through the unrolled solver: 2 forward passes and 1 reverse pass per step
    rgu = records["RGUCheckpointed"]
    assert rgu.details["problem_form"] == "unrolled (differentiable solver)"
    assert rgu.curve.cost["solver_calls"][:3] == (4.0, 6.0, 8.0) and rgu.curve.cost["derivative_passes"][2] == 2.0
    # one unknown, noise-free: least squares converges (KdV smoke: 2e-8 in about 30 calls); Nelder-Mead within
    # its budget of 40 calls (the smoke config's)
    ls, nm = records["LeastSquares"], records["NelderMead"]
    assert ls.metrics["relative_coefficient_error"] < 1e-4 and ls.metrics["solver_calls"] <= 40
    assert nm.metrics["solver_calls"] <= 40 and nm.metrics["relative_coefficient_error"] < 0.1
    assert (tmp_path / "smoke-paper-noise0-scan3.png").stat().st_size > 0  # the error-against-cost figure


@pytest.mark.slow
def test_the_runner_keeps_the_draws_of_the_records_before_it():
    # the regression baseline holds FG²U-ZO smoke records written by the code before the runner (KdV: the same
    # observations, start, directions fold_in(PRNGKey(seed), step) and Adam steps give the same numbers)
    base = next(json.loads(line) for line in BASELINES.open() if json.loads(line)["task"] == "kdv")
    seeds = base["metrics"]["relative_coefficient_error"]["seeds"]
    want = base["metrics"]["relative_coefficient_error"]["values"][seeds.index(0)]
    pc = EXPERIMENT.configure(EXPERIMENT_ARGS)
    task = EXPERIMENT.tasks(pc)[0]
    from fg2u.experiment.runner import resolve_methods, run_method

    (method,) = resolve_methods(EXPERIMENT, pc, ["fg2u_zo"])
    result = run_method(EXPERIMENT, EXPERIMENT.trial(pc, task, 0), method, progress=False)
    assert result.metrics["relative_coefficient_error"] == pytest.approx(want, rel=1e-12)


class _Args:
    config, setting, equations, solver, field_size, solver_noise = "smoke", "paper", ["kdv"], "spectral", None, 0.0
    num_observations = data_source = data_dir = cache_dir = noise = outer_steps = init_scan = stop_below = None
    outer_lr = None
    estimators = None


EXPERIMENT_ARGS = _Args()


@pytest.mark.slow
def test_divergence_is_recorded_and_the_next_method_runs(tmp_path, monkeypatch):
    # identity parametrisation, lr 1: the first Adam step moves δ by −1 (to a negative value): the loss is NaN
    smoke = configs.CONFIGS["smoke"]
    outer = configs.OuterConfig(steps=3, lr={"kdv": 1.0})
    monkeypatch.setitem(configs.CONFIGS, "smoke", smoke.replace(parametrisation="identity", outer=outer))
    assert run(["--config", "smoke", "--equations", "kdv", "--estimators", "fg2u_zo", "least_squares"], tmp_path) == 0
    records = by_estimator(tmp_path / "smoke.jsonl")
    assert records["FG2U_ZO"].status == "diverged" and records["FG2U_ZO"].metrics["diverged_at_step"] == 1
    assert records["LeastSquares"].status == "ok"


@pytest.mark.slow
def test_two_unknowns_and_the_papers_quadrature_record_their_costs(tmp_path):
    argv = ["--config", "smoke", "--setting", "raissi", "--equations", "burgers", "--seeds", "1"]
    argv += ["--estimators", "zo_quadrature", "fg2u_zo:scheme=central", "--init-scan", "3", "--outer-steps", "2"]
    assert run(argv + ["--num-observations", "200"], tmp_path) == 0
    records = by_estimator(tmp_path / "smoke.jsonl")
    quad, central = records["ZOQuadrature"], records["FG2U_ZO"]
    for r in (quad, central):
        assert r.problem_settings["unknowns"] == 2 and r.problem_settings["num_observations"] == 200
        m = r.metrics
        assert m["relative_coefficient_error"] == max(m["lambda1_relative_error"], m["lambda2_relative_error"])
    # 12 nodes along each of the 2 axes + the base point; central random: 2 per direction
    assert quad.curve.cost["solver_calls"] == (4.0, 29.0, 54.0)
    assert central.curve.cost["solver_calls"] == (4.0, 6.0, 8.0)
    assert quad.estimator_settings["num_points"] == 12 and central.estimator_settings["scheme"] == "central"


@pytest.mark.slow
def test_field_setting_runs_every_method_with_its_yardstick(tmp_path):
    argv = ["--config", "smoke", "--setting", "field", "--field-size", "4", "--num-observations", "60"]
    argv += ["--outer-steps", "3", "--estimators", "map_fit", "fg2u_zo", "least_squares", "rgu"]
    assert run(argv, tmp_path) == 0
    records = by_estimator(tmp_path / "smoke-field.jsonl")
    fit = records["MAPFit"]
    assert fit.metrics["posterior_relative_spread"] > 0 and "Matérn" in fit.problem_settings["prior"]
    for name in ("FG2U_ZO", "LeastSquares", "RGU"):
        m = records[name].metrics
        assert m["map_relative_field_error"] == fit.metrics["relative_field_error"]
        assert {"steps_to_map", "solver_calls_to_map", "seconds_to_map"} <= set(m)
    # least squares on the same objective converges to the same fit
    assert records["LeastSquares"].metrics["objective"] == pytest.approx(fit.metrics["objective"], rel=1e-6)
    assert records["FG2U_ZO"].curve.cost["solver_calls"][1] == 17.0  # b = 16 forward differences + the base


@pytest.mark.slow
def test_noisy_field_solver_uses_central_differences_and_the_larger_step(tmp_path):
    argv = ["--config", "smoke", "--setting", "field", "--field-size", "2", "--num-observations", "40"]
    argv += [
        "--solver-noise",
        "0.01",
        "--outer-steps",
        "2",
        "--estimators",
        "fg2u_zo",
        "least_squares:max_solver_calls=8",
    ]
    assert run(argv, tmp_path) == 0
    records = by_estimator(tmp_path / "smoke-field.jsonl")
    zo = records["FG2U_ZO"]
    assert (zo.estimator_settings["eps"], zo.estimator_settings["scheme"], zo.estimator_settings["num_directions"]) == (
        0.05,
        "central",
        8,
    )
    assert zo.curve.cost["solver_calls"][1] == 16.0  # 2 b
    assert records["LeastSquares"].config_settings["fd_step"] == 0.1
    assert records["FG2U_ZO"].problem_settings["solver_noise"] == 0.01


def test_initial_scan_starts_from_the_best_log_spaced_candidate():
    jax.config.update("jax_enable_x64", True)
    x, t = np.linspace(-1, 1, 8), 0.1 * np.arange(4)
    truth = GroundTruth("kdv", x, t, np.zeros((4, 8)), 0.0025, "solver", SpectralSettings(16, 0.1, 4, 1))
    config = configs.get_config("smoke").replace(init_scan=9, num_observations=4, observation_layout="random")
    trial = SpectralTrial(PdeConfig(config, ("kdv",), "solver", None, None, "spectral"), truth, seed=0)
    # L(φ) = (φ − log 0.003)²: the best of 9 log-spaced δ in [1e-4, 1e-2] (ratio 10^(1/4)) is 10^-2.5
    trial.black_box = BlackBoxProblem(lambda phi, data: (phi - jnp.log(0.003)) ** 2, None)
    trial.c_drawn = 0.009
    np.testing.assert_allclose(trial._scan(), 10**-2.5, rtol=1e-12)
    assert trial.scan_calls == 10
    trial.c_drawn = 0.0029  # the random draw wins when it is the best point
    assert trial._scan() == 0.0029


def test_costs_to_reach_reads_the_first_crossing():
    from fg2u.experiment import Curve

    curve = Curve(
        "e", (0, 1, 2, 3), (5.0, 6.0, 7.0, 8.0), (1.0, 0.5, 0.05, 0.2), {"solver_calls": (3.0, 5.0, 7.0, 9.0)}
    )
    out = costs_to_reach(curve, {"a": 0.1, "b": 0.01}, 2.0)
    assert (out["steps_to_a"], out["solver_calls_to_a"], out["seconds_to_a"]) == (2.0, 7.0, 4.0)
    assert all(math.isnan(out[f"{k}_to_b"]) for k in ("steps", "solver_calls", "seconds"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--noise", "-0.1"], "--noise must be a finite number >= 0"),
        (["--outer-steps", "0"], "--outer-steps must be >= 1"),
        (["--num-observations", "0"], "--num-observations must be >= 1"),
        (["--init-scan", "-1"], "--init-scan must be >= 0"),
        (["--stop-below", "0"], "--stop-below must be > 0"),
        (["--outer-lr", "-1"], "--outer-lr must be a finite number > 0"),
        (["--estimators", "noise_floor"], "noise_floor needs noisy observations: pass --noise LEVEL"),
        (["--estimators", "map_fit"], "map_fit is the field setting's yardstick"),
        (["--solver", "pinn", "--estimators", "least_squares"], "least_squares runs on the spectral solver"),
        (["--setting", "raissi", "--equations", "allen_cahn"], "has two unknowns; allen_cahn has one"),
        (["--setting", "raissi", "--solver", "pinn"], "--solver pinn follows the paper's setting"),
        (["--setting", "field", "--solver", "pinn"], "--setting field runs on the spectral solver"),
        (["--setting", "field", "--equations", "kdv"], "--setting field has its own equation"),
        (["--setting", "field", "--field-size", "0"], "--field-size must be >= 1"),
        (["--setting", "field", "--field-size", "4096"], "--field-size 4096: more nodes than the"),
        (["--setting", "field", "--estimators", "noise_floor"], "the field setting's yardstick is map_fit"),
        (["--setting", "field", "--estimators", "zo_quadrature"], "zo_quadrature (12 nodes per unknown)"),
        (
            ["--setting", "field", "--solver-noise", "0.01", "--estimators", "rgu"],
            "the noisy solver (--solver-noise) is a",
        ),
        (["--setting", "field", "--solver-noise", "-1"], "--solver-noise must be a finite number >= 0"),
        (["--field-size", "16"], "--field-size applies to --setting field only"),
        (["--solver-noise", "0.01"], "--solver-noise applies to --setting field only"),
        (["--equations", "allen_cahn_periodic", "--data-source", "reference"], "has no reference file"),
        (["--estimators", "fg2u_zo:num_directions=0"], "num_directions"),
        (["--estimators", "least_squares:tol=1"], "LeastSquares has no setting(s) tol"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    assert main(PDE(), ["--config", "smoke", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "smoke.jsonl").exists()


def test_missing_reference_data_names_the_file(tmp_path, capsys):
    # --data-dir alone selects the authors' files
    assert (
        main(
            PDE(), ["--config", "smoke", "--equations", "burgers", "--data-dir", str(tmp_path), "--out", str(tmp_path)]
        )
        == 2
    )
    assert "burgers.mat" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--config", "huge"], ["--equations", "heat"], ["--seeds", "x"], ["--setting", "1d"]])
def test_argparse_choices_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(PDE(), argv)
    assert info.value.code == 2


def test_gradient_check_compares_the_black_box_estimate_with_rgu_through_the_unrolled_solver(tmp_path):
    # FG2U-ZO sees only the black box, the exact reference (RGU) the unrolled form of the same solve and data.
    # One unknown and a Rademacher direction: (g·v)v = g exactly, so the estimate differs from the exact
    # gradient only by the forward difference's O(ε) bias, ε·|L''|/(2|L'|) relative (ε = 1e-4 on log c; measured
    # 2e-8 to 1.6e-4 on the smoke equations); a flipped sign would give projection -1, a wrong scale b or 1/b.
    argv = ["--config", "smoke", "--equations", "kdv", "--seeds", "0", "--estimators", "fg2u_zo"]
    assert run([*argv, "--gradient-check", "2", "--gradient-check-only"], tmp_path) == 0
    (record,) = read_records(tmp_path / "smoke.jsonl")
    assert (record.task, record.status, record.details["draws"]) == ("gradient-check-kdv", "ok", 2)
    m = record.metrics
    assert m["grad_projection"] == pytest.approx(1.0, abs=1e-3)
    assert m["grad_cosine"] == pytest.approx(1.0, abs=1e-9)  # one unknown: the sign is all a direction carries
    assert m["grad_mse_ratio"] < 1e-6


def test_nelder_mead_starts_the_field_from_a_simplex_of_the_priors_scale():
    # SciPy's default simplex around the zero start has edge 0.00025 and never leaves it; the field's preset is
    # the prior's marginal std, a given setting still wins, and the coefficient settings keep SciPy's rule
    from fg2u.experiment.runner import resolve_methods
    from fg2u_bench_pde.field import FieldSpec

    cpu = configs.CONFIGS["cpu"]
    field = PdeConfig(cpu, ("allen_cahn_field",), "solver", None, None, "spectral", FieldSpec(num_unknowns=16))
    (default,) = resolve_methods(PDE(), field, ["nelder_mead"])
    assert default.spec.settings["initial_step"] == 0.5 == FieldSpec(num_unknowns=16).prior_std
    (given,) = resolve_methods(PDE(), field, ["nelder_mead:initial_step=0.1"])
    assert given.spec.settings["initial_step"] == 0.1
    paper = PdeConfig(cpu, ("kdv",), "solver", None, None, "spectral")
    (coefficient,) = resolve_methods(PDE(), paper, ["nelder_mead"])
    assert coefficient.spec.settings["initial_step"] is None
