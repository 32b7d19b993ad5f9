"""PINN inner problem: exact IC/BC, residual derivatives, and consistent meta-gradients (FG2U vs RGU)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fg2u_bench_pde.equations import get_equation, phi_from_coefficient
from fg2u_bench_pde.observations import sample_observations
from fg2u_bench_pde.pinn import PinnSettings, init_mlp, pinn_apply, pinn_problem, residual

SMALL = PinnSettings(depth=3, width=8, inner_steps=3, inner_lr=1e-2, batch_size=16)


@pytest.fixture(autouse=True)
def _float64():
    with jax.enable_x64(True):
        yield


def _params(name):
    return init_mlp(jax.random.PRNGKey(1), get_equation(name), SMALL)


@pytest.mark.parametrize("name", ["burgers", "allen_cahn", "kdv"])
def test_initial_condition_and_boundary_are_exact(name):
    eq, params = get_equation(name), _params(name)
    x = jnp.linspace(-1, 1, 9)
    u0 = jax.vmap(lambda xx: pinn_apply(params, eq, 0.0, xx))(x)
    np.testing.assert_allclose(u0, eq.initial_condition(x), atol=1e-15)
    at = jax.vmap(lambda xx: pinn_apply(params, eq, 0.7, xx))
    if name in ("burgers", "allen_cahn"):  # Dirichlet: u(t, ±1) = u0(±1) = 0 and −1
        np.testing.assert_allclose(at(jnp.array([-1.0, 1.0])), eq.initial_condition(jnp.array([-1.0, 1.0])), atol=1e-15)
    else:  # periodic features: u(t, -1) = u(t, 1)
        a, b = at(jnp.array([-1.0, 1.0]))
        assert abs(a - b) < 1e-14


@pytest.mark.parametrize("name", ["burgers", "allen_cahn", "kdv"])
def test_residual_matches_finite_differences(name):
    eq, params = get_equation(name), _params(name)
    c, t, x = 0.01, 0.3, 0.2
    u = lambda tt, xx: pinn_apply(params, eq, tt, xx)  # noqa: E731
    h = 1e-3  # central differences, truncation O(h²) ≈ 1e-6 relative to the derivatives
    u_t = (u(t + h, x) - u(t - h, x)) / (2 * h)
    u_x = (u(t, x + h) - u(t, x - h)) / (2 * h)
    u_xx = (u(t, x + h) - 2 * u(t, x) + u(t, x - h)) / h**2
    u_xxx = (u(t, x + 2 * h) - 2 * u(t, x + h) + 2 * u(t, x - h) - u(t, x - 2 * h)) / (2 * h**3)
    v = u(t, x)
    expected = {
        "burgers": u_t + v * u_x - c * u_xx,
        "allen_cahn": u_t - c * u_xx - 5 * (v - v**3),
        "kdv": u_t + v * u_x + c * u_xxx,
    }[name]
    got = residual(params, eq, c, jnp.asarray(t), jnp.asarray(x))
    assert abs(float(got) - float(expected)) < 1e-5 * (1 + abs(float(expected)))


def _problem(name):
    eq = get_equation(name)
    xg, tg = np.linspace(-1, 1, 11), np.linspace(0, 1, 6)
    u = np.sin(np.pi * xg)[None, :] * np.exp(-tg)[:, None]  # any target values
    obs = sample_observations(xg, tg, u, num_points=8, seed=0)
    return pinn_problem(eq, SMALL, "log", obs, collocation_seed=0), jnp.asarray(phi_from_coefficient(0.02, "log"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kdv"])  # the richest residual (u_xxx); one equation keeps the test fast
def test_fg2u_with_one_coefficient_is_exact_and_matches_rgu_and_finite_differences(name):
    # φ is a single number: a Rademacher direction is v = ±1 and FG2U gives (g·v)v = g exactly,
    # so FG2U and RGU (forward vs reverse mode through the SGD unroll) agree to round-off.
    from fg2u.jax import FG2U, RGU, meta_objective

    problem, phi = _problem(name)
    g_rgu, aux = jax.jit(RGU())(problem, phi, None)
    g_fg2u, _ = jax.jit(FG2U())(problem, phi, jax.random.PRNGKey(3))
    assert abs(float(g_rgu)) > 0
    np.testing.assert_allclose(g_fg2u, g_rgu, rtol=1e-10)
    # independent oracle: central difference of L(φ), error O(ε²) + round-off/ε ≈ 1e-9 relative
    loss = jax.jit(meta_objective(problem))
    eps = 1e-4
    fd = (loss(phi + eps) - loss(phi - eps)) / (2 * eps)
    np.testing.assert_allclose(g_rgu, fd, rtol=1e-6)
    np.testing.assert_allclose(aux.outer_loss, loss(phi), rtol=1e-12)


def test_pinn_settings_reject_bad_values():
    with pytest.raises(ValueError, match="depth"):
        PinnSettings(depth=1)
    with pytest.raises(ValueError, match="inner_lr"):
        PinnSettings(inner_lr=0.0)
    with pytest.raises(TypeError, match="batch_size"):
        PinnSettings(batch_size=2.5)
