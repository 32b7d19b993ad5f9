"""The benchmark CLI end to end (smoke config) and its errors for bad input."""

import math

import jax
import numpy as np
import pytest

from fg2u.records import read_records
from fg2u_bench_pde.cli import main
from fg2u_bench_pde.configs import OuterConfig, get_config
from fg2u_bench_pde.equations import UnstableSettingError


def test_smoke_run_writes_a_record_and_improves_the_coefficient(tmp_path, capsys):
    rc = main(
        [
            "--config",
            "smoke",
            "--equations",
            "kdv",
            "--estimators",
            "fg2u_zo_forward",
            "--seeds",
            "0",
            "--data-source",
            "solver",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert rc == 0
    (record,) = read_records(tmp_path / "smoke.jsonl")
    assert (record.benchmark, record.task, record.config, record.estimator) == ("pde", "kdv", "smoke", "FG2U_ZO")
    m = record.metrics
    cost = {k for k in m if k.startswith(("steps_to", "seconds_to", "solver_calls_to"))}
    assert cost == {f"{w}_to_{t}" for w in ("steps", "seconds", "solver_calls") for t in ("1pct", "0.1pct")}
    assert all(math.isfinite(v) for k, v in m.items() if k not in cost)
    assert m["target_coefficient"] == 0.0025
    st = record.settings
    assert (st["setting"], st["observation_layout"], st["num_observations"], st["unknowns"]) == ("paper", "grid", 64, 1)
    assert (st["directions"], st["num_directions"], st["solves_per_step"], st["deviation"]) == (
        "rademacher",
        1,
        2,
        "none",
    )
    # 4 Adam steps of size ≈ lr = 0.1 in log δ from δ0 = 0.0073: the coefficient must move towards δ*
    assert abs(m["coefficient"] - 0.0025) < abs(m["initial_coefficient"] - 0.0025)
    assert record.settings["memory_measure"] == "peak_rss" and record.peak_memory_bytes > 0
    assert record.settings["estimator_class"] == "FG2U_ZO" and record.settings["scheme"] == "forward"
    out = capsys.readouterr().out
    assert "paper" in out and "kdv" in out
    assert not jax.config.jax_enable_x64  # float64 only inside the run


@pytest.mark.parametrize(
    "argv",
    [["--estimators", "nope"], ["--config", "huge"], ["--equations", "heat"], ["--seeds", "x"]],
)
def test_bad_arguments_exit_with_usage(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_negative_noise_and_steps_are_rejected():
    with pytest.raises(SystemExit, match="noise"):
        main(["--noise", "-0.1"])
    with pytest.raises(SystemExit, match="outer-steps"):
        main(["--outer-steps", "0"])
    with pytest.raises(SystemExit, match="--noise LEVEL"):  # the noise floor of exact data does not exist
        main(["--config", "smoke", "--estimators", "noise_floor"])


def test_missing_reference_data_names_the_file(tmp_path, capsys):
    # --data-dir alone selects the authors' files
    rc = main(["--config", "smoke", "--equations", "burgers", "--data-dir", str(tmp_path), "--out", str(tmp_path)])
    assert rc == 2
    assert "burgers.mat" in capsys.readouterr().err


def test_a_step_that_makes_the_coefficient_negative_raises_naming_the_setting():
    from fg2u_bench_pde.run import build_task, run_one

    config = get_config("smoke").replace(parametrisation="identity", outer=OuterConfig(steps=3, lr={"kdv": 1.0}))
    with jax.enable_x64(True):
        task = build_task(config, "kdv", "solver")
        with pytest.raises(UnstableSettingError, match=r"kdv with fg2u_zo_forward .*parametrisation identity"):
            run_one(config, task, "fg2u_zo_forward", seed=0)


def test_two_unknowns_and_the_quadrature_record_their_cost(tmp_path):
    rc = main(
        [
            "--config",
            "smoke",
            "--setting",
            "raissi",
            "--equations",
            "burgers",
            "--estimators",
            "zo_quadrature",
            "fg2u_zo_central",
            "--seeds",
            "1",
            "--init-scan",
            "3",
            "--outer-steps",
            "2",
            "--num-observations",
            "200",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert rc == 0
    quad, central = read_records(tmp_path / "smoke.jsonl")
    for r in (quad, central):
        assert r.estimator == "FG2U_ZO" and r.settings["unknowns"] == 2 and r.settings["num_observations"] == 200
        assert r.settings["deviation"].startswith("init_scan") and r.settings["initial_scan_solves"] == 4
        m = r.metrics
        assert m["relative_coefficient_error"] == max(m["lambda1_relative_error"], m["lambda2_relative_error"])
    # 12 nodes along each of the 2 axes + the base point; central random: 2 per direction
    assert (quad.settings["directions"], quad.settings["solves_per_step"]) == ("quadrature12", 25)
    assert (central.settings["scheme"], central.settings["solves_per_step"]) == ("central", 2)


def test_settings_that_do_not_apply_are_refused():
    with pytest.raises(SystemExit, match="two unknowns"):
        main(["--setting", "raissi", "--equations", "allen_cahn"])
    from fg2u_bench_pde.run import build_task, run_one

    config = get_config("smoke").replace(unknowns=2)
    with jax.enable_x64(True):
        task = build_task(config, "kdv", "solver")
        with pytest.raises(ValueError, match="PINN baseline"):
            run_one(config, task, "rgu", seed=0)


def test_initial_scan_starts_from_the_best_log_spaced_candidate():
    from fg2u import BlackBoxProblem
    from fg2u_bench_pde.equations import get_equation
    from fg2u_bench_pde.run import _scan_start

    with jax.enable_x64(True):
        # L(φ) = (φ − log 0.003)²: the best of 9 log-spaced δ in [1e-4, 1e-2] (ratio 10^(1/4)) is 10^-2.5
        problem = BlackBoxProblem(lambda phi, data: (phi - np.log(0.003)) ** 2)
        config = get_config("smoke").replace(init_scan=9)
        start = _scan_start(config, problem, get_equation("kdv"), "log", c_drawn=0.009)
        np.testing.assert_allclose(start, 10**-2.5, rtol=1e-12)
        # the random draw wins when it is the best point
        assert _scan_start(config, problem, get_equation("kdv"), "log", c_drawn=0.0029) == 0.0029
