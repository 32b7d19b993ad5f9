"""The two forms of the spectral problem (:mod:`fg2u_bench_pde.problems`): the black box and the same solve as an
unrolled problem. Oracle: ``jax.grad`` of the black box (the solver is differentiable in JAX)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fg2u_bench_pde.equations import get_equation
from fg2u_bench_pde.observations import sample_observations
from fg2u_bench_pde.problems import (
    interval_batches,
    spectral_problem,
    spectral_residuals,
    spectral_unrolled_problem,
)
from fg2u_bench_pde.spectral import SpectralSettings, solve


@pytest.fixture(autouse=True)
def _float64():
    with jax.enable_x64(True):
        yield


def _data(name, unknowns):
    eq = get_equation(name)
    settings = SpectralSettings(32, 0.02, 8, 2)
    x = np.linspace(-1, 1, 17)
    u = solve(eq, 0.012, settings, x, nonlinear_scale=0.9)
    obs = sample_observations(x, 0.02 * np.arange(8), u, num_points=30, seed=1, include_initial_time=True)
    phi = jnp.log(jnp.array([1.1, 0.02])) if unknowns == 2 else jnp.log(jnp.asarray(0.02))
    return eq, settings, obs, phi


@pytest.mark.parametrize(("name", "unknowns"), [("kdv", 2), ("allen_cahn", 1)])
def test_unrolled_form_has_the_black_box_loss(name, unknowns):
    from fg2u.jax import meta_objective

    eq, settings, obs, phi = _data(name, unknowns)
    box = spectral_problem(eq, settings, "log", obs, unknowns)
    unrolled = spectral_unrolled_problem(eq, settings, "log", obs, unknowns)
    assert unrolled.num_steps == settings.num_outputs - 1 and 0 in obs.t_index  # t = 0: the outer loss's part
    # the same arithmetic per solve, the misfit summed per output time instead of at once: round-off apart
    np.testing.assert_allclose(meta_objective(unrolled)(phi), box.objective(phi, box.data), rtol=1e-12)
    residuals = spectral_residuals(eq, settings, "log", unknowns)(phi, box.data)
    np.testing.assert_allclose(jnp.mean(residuals**2), box.objective(phi, box.data), rtol=1e-14)


@pytest.mark.slow
def test_white_box_estimators_through_the_unrolled_form_give_the_gradient():
    from fg2u.jax import FG2U, RGU, RGUCheckpointed

    eq, settings, obs, phi = _data("burgers", 2)
    box = spectral_problem(eq, settings, "log", obs, 2)
    unrolled = spectral_unrolled_problem(eq, settings, "log", obs, 2)
    loss = box.objective(phi, box.data)
    exact = jax.grad(box.objective)(phi, box.data)
    for estimator in (RGU(), RGUCheckpointed(segment_length=3)):
        grad, aux = jax.jit(estimator)(unrolled, phi, None)
        np.testing.assert_allclose(grad, exact, rtol=1e-9)
        np.testing.assert_allclose(aux.outer_loss, loss, rtol=1e-12)
    # FG²U with orthogonal directions spanning φ's space is exact: (1/b) Σ (g·v)v = g for b = d
    fg2u = FG2U(num_directions=2, distribution="orthogonal")
    grad, _ = jax.jit(fg2u)(unrolled, phi, jax.random.PRNGKey(0))
    np.testing.assert_allclose(grad, exact, rtol=1e-9)


def test_interval_batches_group_the_observations_by_output_time():
    eq, settings, obs, _ = _data("kdv", 1)
    batches = interval_batches(obs, settings.num_outputs, 0.5)
    inner, initial = batches["inner"], batches["initial"]
    assert inner["x"].shape[0] == settings.num_outputs - 1
    for n in range(1, settings.num_outputs):
        idx = np.flatnonzero(obs.t_index == n)
        assert float(np.sum(inner["w"][n - 1])) == pytest.approx(0.5 * len(idx))
        np.testing.assert_array_equal(np.sort(np.asarray(inner["u"][n - 1][: len(idx)])), np.sort(obs.u[idx]))
    assert float(np.sum(initial["w"])) == pytest.approx(0.5 * np.sum(obs.t_index == 0))
    with pytest.raises(ValueError, match="num_outputs"):
        interval_batches(obs, 3, 1.0)
