"""FG²U-ZO on the spectral black box vs the exact gradient of the (differentiable) JAX solver."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fg2u import BlackBoxProblem
from fg2u_bench_pde.equations import get_equation, phi_from_coefficient
from fg2u_bench_pde.observations import sample_observations
from fg2u_bench_pde.problems import spectral_problem
from fg2u_bench_pde.spectral import SpectralSettings, solve


@pytest.fixture(autouse=True)
def _float64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def log_problem():
    with jax.enable_x64(True):
        problem, phi = _problem()
        exact = float(jax.jit(jax.grad(problem.objective))(phi, problem.data))
    return problem, phi, exact


def _problem(parametrisation="log"):
    eq = get_equation("burgers")
    settings = SpectralSettings(32, 0.05, 5, 2)
    x = np.linspace(-1, 1, 17)
    u = solve(eq, 0.05, settings, x)  # data from ν = 0.05; the gradient is taken at ν = 0.08
    obs = sample_observations(x, 0.05 * np.arange(5), u, num_points=12, seed=1)
    problem = spectral_problem(eq, settings, parametrisation, obs)
    # the objective compiled once; the estimators below run eagerly around it (one compilation in all)
    problem = BlackBoxProblem(jax.jit(problem.objective), problem.data)
    return problem, jnp.asarray(phi_from_coefficient(0.08, parametrisation))


def test_zo_error_is_first_order_forward_and_second_order_central(log_problem):
    from fg2u.jax import FG2U_ZO

    problem, phi, exact = log_problem
    assert abs(exact) > 1e-6
    one = jnp.ones((1,))  # the single Rademacher direction v = +1 (for N = 1, (g·v)v = g exactly)

    def error(scheme, eps):
        g, _ = FG2U_ZO(eps=eps, scheme=scheme).with_directions(problem, phi, one)
        return abs(float(g) - exact)

    # truncation error ε/2·L'' (forward) and ε²/6·L''' (central) dominate round-off (1e-16/ε) here
    fwd = [error("forward", e) for e in (4e-2, 2e-2, 1e-2)]
    cen = [error("central", e) for e in (4e-2, 2e-2, 1e-2)]
    fwd_orders = np.log2(np.array(fwd[:-1]) / np.array(fwd[1:]))
    cen_orders = np.log2(np.array(cen[:-1]) / np.array(cen[1:]))
    assert np.all(np.abs(fwd_orders - 1) < 0.15), (fwd, fwd_orders)
    assert np.all(np.abs(cen_orders - 2) < 0.15), (cen, cen_orders)
    # at the benchmark's ε = 1e-4 both are accurate to well below 0.1 %
    assert error("forward", 1e-4) < 1e-3 * abs(exact)
    assert error("central", 1e-4) < 1e-6 * abs(exact)


def test_random_direction_estimator_equals_the_gradient_for_one_coefficient(log_problem):
    from fg2u.jax import FG2U_ZO

    problem, phi, exact = log_problem
    for seed in range(3):
        g, aux = FG2U_ZO(eps=1e-6, scheme="central")(problem, phi, jax.random.PRNGKey(seed))
        assert abs(float(g) - exact) < 1e-6 * abs(exact)
    np.testing.assert_allclose(aux.outer_loss, problem.objective(phi, problem.data), rtol=1e-8)


def test_non_positive_coefficient_gives_nan_loss_not_a_silent_number():
    problem, _ = _problem("identity")
    assert np.isnan(float(problem.objective(jnp.asarray(-0.01), problem.data)))
    assert np.isnan(float(problem.objective(jnp.asarray(0.0), problem.data)))
