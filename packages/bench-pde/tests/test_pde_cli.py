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
    rc = main(["--config", "smoke", "--equations", "kdv", "--estimators", "fg2u_zo_forward", "--seeds", "0",
               "--data-source", "solver", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    (record,) = read_records(tmp_path / "smoke.jsonl")
    assert (record.benchmark, record.task, record.config, record.estimator) == ("pde", "kdv", "smoke", "fg2u_zo_forward")
    m = record.metrics
    assert all(math.isfinite(v) for v in m.values())
    assert m["target_coefficient"] == 0.0025
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


def test_missing_reference_data_names_the_file(tmp_path, capsys):
    rc = main(["--config", "smoke", "--equations", "burgers", "--data-dir", str(tmp_path), "--out", str(tmp_path)])
    assert rc == 2
    assert "burgers.mat" in capsys.readouterr().err


def test_a_step_that_makes_the_coefficient_negative_raises_naming_the_setting():
    from fg2u_bench_pde.run import build_task, run_one

    config = get_config("smoke").replace(parametrisation="identity",
                                         outer=OuterConfig(steps=3, lr={"kdv": 1.0}))
    with jax.enable_x64(True):
        task = build_task(config, "kdv", "solver")
        with pytest.raises(UnstableSettingError, match=r"kdv with fg2u_zo_forward .*parametrisation identity"):
            run_one(config, task, "fg2u_zo_forward", seed=0)


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
