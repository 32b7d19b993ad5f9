"""The coefficient-field setting (:mod:`fg2u_bench_pde.field`): basis, prior, the two problem forms, the noisy
solver."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fg2u_bench_pde.field import (
    FieldSpec,
    field_black_box,
    field_objective_parts,
    field_unrolled_problem,
    hat_basis,
    prior_gradient,
    prior_precision,
    relative_field_error,
    true_log_rate,
)
from fg2u_bench_pde.observations import sample_observations
from fg2u_bench_pde.problems import observation_data
from fg2u_bench_pde.spectral import SpectralSettings, grid_points


@pytest.fixture(autouse=True)
def _float64():
    with jax.enable_x64(True):
        yield


def test_hat_basis_interpolates_linearly_and_periodically():
    b = hat_basis(16, 4)  # nodes every 4 grid points
    np.testing.assert_allclose(b.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(hat_basis(8, 8), np.eye(8), atol=1e-15)
    theta = np.array([0.0, 1.0, 3.0, 2.0])
    # grid point 2 lies half way between nodes 0 and 1; point 14 half way between node 3 and node 0 (wrapping)
    values = b @ theta
    assert values[2] == pytest.approx(0.5) and values[14] == pytest.approx(1.0) and values[4] == pytest.approx(1.0)


def test_prior_has_the_stated_marginal_standard_deviation():
    # The SPDE (κ² − ∂²) f = τ W on the line has Var f = τ²/(4κ³) = s² (here 0.25). Discretised with spacing
    # h = 2/256 the relative error is O((κh)²) ≈ 0.3 %, and the period 2 adds correlations e^{−2κ}(1 + 2κ) ≈ 1e-5:
    # the mean diagonal of Q⁻¹ is within 2 % of s².
    spec = FieldSpec(256)
    q, root = prior_precision(spec)
    np.testing.assert_allclose(root.T @ root, q, rtol=1e-12)
    variance = np.mean(np.diag(np.linalg.inv(q)))
    assert abs(variance / spec.prior_std**2 - 1) < 0.02, variance
    with pytest.raises(ValueError, match="solver_noise"):
        FieldSpec(16, solver_noise=-1.0)
    with pytest.raises(ValueError, match="num_unknowns"):
        FieldSpec(0)


def test_prior_gradient_adds_q_theta():
    q = np.array([[2.0, 1.0], [1.0, 3.0]])
    transform = prior_gradient(q)
    theta = jnp.array([0.5, -1.0])
    updates, _ = transform.update(jnp.array([1.0, 1.0]), transform.init(theta), theta)
    np.testing.assert_allclose(updates, np.array([1.0, 1.0]) + q @ np.asarray(theta))


def test_field_error_is_zero_only_at_the_truth_and_the_start_error_is_the_rate_contrast():
    n = 64
    x = np.asarray(grid_points(n, jnp.float64))
    assert relative_field_error(true_log_rate(x), n, n) == pytest.approx(0.0, abs=1e-15)
    truth = 5.0 * np.exp(true_log_rate(x))
    assert relative_field_error(np.zeros(n), n, n) == pytest.approx(np.linalg.norm(5 - truth) / np.linalg.norm(truth))


def _small(noise=0.0):
    settings = SpectralSettings(32, 0.02, 6, 1)
    spec = FieldSpec(8, diffusion=2e-3, solver_noise=noise)
    x = -1 + 2 * np.arange(32) / 32
    t = 0.02 * np.arange(6)
    u = np.cos(np.pi * x)[None, :] * np.exp(-t)[:, None]  # any data
    obs = sample_observations(x, t, u, num_points=40, seed=0)
    return settings, spec, obs


@pytest.mark.slow
def test_unrolled_misfit_equals_the_black_box_and_rgu_equals_jax_grad():
    from fg2u.jax import RGU, meta_objective

    settings, spec, obs = _small()
    sigma = 0.01
    data = {**observation_data(obs), "noise_key": jax.random.PRNGKey(0)}
    box = field_black_box(settings, spec, sigma, 0.0, data)
    unrolled = field_unrolled_problem(settings, spec, sigma, obs)
    theta = 0.3 * jnp.sin(jnp.arange(8.0))
    # the same solve summed in another order: equal to round-off (1e-12 relative)
    np.testing.assert_allclose(meta_objective(unrolled)(theta), box.objective(theta, box.data), rtol=1e-12)
    grad, _ = jax.jit(RGU())(unrolled, theta, None)
    np.testing.assert_allclose(grad, jax.grad(box.objective)(theta, box.data), rtol=1e-9)
    with pytest.raises(ValueError, match="no noisy variant"):
        field_unrolled_problem(settings, FieldSpec(8, solver_noise=0.01), sigma, obs)


def test_noisy_solver_draws_fresh_noise_of_the_stated_size_for_every_call():
    settings, spec, obs = _small(noise=0.05)
    scale = 0.05
    predict = jax.jit(field_objective_parts(settings, spec, 0.01, scale)[0])
    exact = jax.jit(field_objective_parts(settings, FieldSpec(8, diffusion=2e-3), 0.01, 0.0)[0])
    data = {**observation_data(obs), "noise_key": jax.random.PRNGKey(3)}
    theta = jnp.zeros(8)
    noise = np.concatenate([np.asarray(predict(theta + 1e-9 * i, data) - exact(theta, data)) for i in range(50)])
    # 50 calls × 40 values: a sample std has relative standard error √(1/(2n)) = 1.6 %; 5 of those
    assert abs(np.std(noise) / scale - 1) < 5 * math.sqrt(1 / (2 * noise.size))
    # two calls at nearby points are independent (their correlation has standard error 1/√40 ≈ 0.16)
    a = np.asarray(predict(theta, data) - exact(theta, data))
    b = np.asarray(predict(theta + 1e-9, data) - exact(theta, data))
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(40)
    # the same call twice is the same (a pure function of θ and the key)
    np.testing.assert_array_equal(np.asarray(predict(theta, data)), np.asarray(predict(theta, data)))
