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


def test_quadrature_estimator_is_the_papers_weighted_forward_difference(log_problem):
    from fg2u_bench_pde.quadrature import FixedQuadratureZO

    problem, phi, exact = log_problem
    quad = FixedQuadratureZO(eps=1e-6)
    v, w = quad.nodes_and_weights()
    np.testing.assert_allclose(np.sum(w), 1.0, rtol=1e-14)
    second_moment = float(np.sum(w * v**2))  # a 12-node quadrature of E[v²] = 1 for v ~ N(0, 1)
    assert abs(second_moment - 1.0) < 1e-3, second_moment
    g, aux = quad(problem, phi, None)
    # deterministic: Σ w (L(φ+εv) − L(φ))/ε v = L'(φ)·Σ w v² + O(ε·max v³)
    assert abs(float(g) - second_moment * exact) < 1e-4 * abs(exact)
    np.testing.assert_allclose(aux.outer_loss, problem.objective(phi, problem.data), rtol=1e-12)
    assert quad.solves_per_step(1) == 13 and quad.solves_per_step(2) == 25
    assert FixedQuadratureZO(scheme="central").solves_per_step(1) == 24
    with pytest.raises(ValueError, match="scheme"):
        FixedQuadratureZO(scheme="backward")


def test_two_unknown_objective_gradient_matches_jax_grad():
    # φ = (log λ₁, log ν): FG²U-ZO central with ε = 1e-6 over many Rademacher directions is unbiased for
    # the 2-d gradient; with a quadrature along the axes it is the gradient (both vs jax.grad).
    from fg2u_bench_pde.quadrature import FixedQuadratureZO

    eq = get_equation("burgers")
    settings = SpectralSettings(32, 0.05, 5, 2)
    x = np.linspace(-1, 1, 17)
    u = solve(eq, 0.05, settings, x, nonlinear_scale=0.8)
    obs = sample_observations(x, 0.05 * np.arange(5), u, num_points=12, seed=1)
    p = spectral_problem(eq, settings, "log", obs, unknowns=2)
    problem = BlackBoxProblem(jax.jit(p.objective), p.data)
    phi = jnp.log(jnp.array([1.1, 0.07]))
    exact = np.asarray(jax.grad(problem.objective)(phi, problem.data))
    assert np.all(np.abs(exact) > 1e-6)
    quad = FixedQuadratureZO(eps=1e-6, scheme="central")
    v, w = quad.nodes_and_weights()
    g, _ = quad(problem, phi, None)
    np.testing.assert_allclose(np.asarray(g), float(np.sum(w * v**2)) * exact, rtol=1e-5)
    # b = 2 orthogonal directions (a random rotation of the axes, scaled by √2) give the exact gradient:
    # (1/2) Σ (g·v)v = Σ q qᵀ g = g; one Rademacher direction does not (cross term g₁v₁v₂)
    from fg2u.jax import FG2U_ZO

    for seed in range(2):
        g, _ = FG2U_ZO(num_directions=2, distribution="orthogonal", eps=1e-6, scheme="central")(
            problem, phi, jax.random.PRNGKey(seed)
        )
        np.testing.assert_allclose(np.asarray(g), exact, rtol=1e-5)
    # the loss vanishes at the generating coefficients
    assert float(problem.objective(jnp.log(jnp.array([0.8, 0.05])), problem.data)) < 1e-20
