"""The noise floor (Cramér–Rao bound) of :mod:`fg2u_bench_pde.information`.

Oracles: (1) a linear model u = Aθ, where the least-squares estimate is exactly unbiased with covariance
σ²(AᵀA)⁻¹ — checked against the empirical covariance of 4,000 least-squares fits on fresh noise (a variance
estimated from n draws has relative standard error √(2/n) ≈ 2.2 %; the tolerance is 5 of those, and for the
off-diagonal entry 5 · √(2/n) · √(c_11 c_22)); (2) the
benchmark's own solver: its forward-mode Jacobian against central finite differences, and the one-unknown floor
against its closed form σ/(‖J‖ c)·√(2/π).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fg2u_bench_pde.information import NoiseFloor, cramer_rao_covariance, noise_floor, posterior_covariance


def test_linear_model_bound_is_the_least_squares_covariance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 2)) * np.array([1.0, 0.2])  # the second unknown is weakly observed
    theta, sigma, n = np.array([1.5, -0.7]), 0.3, 4000
    with jax.enable_x64(True):
        cov = cramer_rao_covariance(lambda th: jnp.asarray(a) @ th, theta, sigma)
    np.testing.assert_allclose(cov, sigma**2 * np.linalg.inv(a.T @ a), rtol=1e-12)
    fits = np.linalg.lstsq(a, (a @ theta)[:, None] + sigma * rng.normal(size=(40, n)), rcond=None)[0].T
    # entry (i, j) of a sample covariance has standard error ≤ √(2/n) · √(c_ii c_jj): 5 of those
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert np.all(np.abs(np.cov(fits.T) - cov) / scale < 5 * math.sqrt(2 / n))
    floor = NoiseFloor(cov, theta, draws=200_000)
    rel = np.abs(fits - theta) / np.abs(theta)
    # E|e_k| = √(2/π) s_k and E max_k |e_k|: 5 standard errors of the sample means
    np.testing.assert_allclose(rel.mean(0), floor.expected_relative_error, rtol=5 * 0.76 / math.sqrt(n))
    assert abs(rel.max(1).mean() - floor.expected_max_relative_error) < 5 * rel.max(1).std() / math.sqrt(n)


def test_posterior_covariance_is_the_map_error_covariance_of_a_linear_gaussian_model():
    # θ ~ N(0, Q⁻¹), y = Aθ + σε: the MAP estimate (AᵀA/σ² + Q)⁻¹ Aᵀy/σ² has error covariance exactly
    # (AᵀA/σ² + Q)⁻¹ over prior and noise. Tolerance as above: 5 standard errors √(2/n) of a sample covariance.
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 3))
    q = np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]])
    sigma, n = 0.5, 4000
    cov = posterior_covariance(a, sigma, q)
    np.testing.assert_allclose(cov, np.linalg.inv(a.T @ a / sigma**2 + q), rtol=1e-12)
    theta = rng.multivariate_normal(np.zeros(3), np.linalg.inv(q), size=n)
    y = theta @ a.T + sigma * rng.normal(size=(n, 6))
    estimates = y @ a @ cov.T / sigma**2
    errors = estimates - theta
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert np.all(np.abs(np.cov(errors.T) - cov) / scale < 5 * math.sqrt(2 / n))


def test_unobservable_coefficient_is_a_clear_error():
    with jax.enable_x64(True), pytest.raises(ValueError, match="do not determine"):
        cramer_rao_covariance(lambda th: jnp.stack([th[0], 2 * th[0]]), np.array([1.0, 2.0]), 0.1)


@pytest.mark.slow
def test_solver_floor_matches_finite_differences_and_the_closed_form():
    from fg2u_bench_pde.configs import get_config
    from fg2u_bench_pde.equations import get_equation
    from fg2u_bench_pde.experiment import build_ground_truth
    from fg2u_bench_pde.observations import sample_observations
    from fg2u_bench_pde.problems import _values_at, observation_data
    from fg2u_bench_pde.spectral import solve_spectrum

    with jax.enable_x64(True):
        config = get_config("smoke").replace(noise_level=0.01)
        task = build_ground_truth(config, "kdv")
        eq = get_equation("kdv")
        obs = sample_observations(task.x, task.t, task.u, num_points=16, noise_level=0.01, seed=0, layout="grid")
        data = observation_data(obs)

        def predict(c):
            spectra = solve_spectrum(eq, c, task.spectral)
            return np.asarray(_values_at(spectra, data["t_index"], data["x"], task.spectral.num_points))

        c = task.target_coefficient
        h = 1e-5 * c
        fd = (predict(c + h) - predict(c - h)) / (2 * h)  # O(h²) truncation, far below the tolerance
        floor = noise_floor(eq, task, obs, unknowns=1, noise_level=0.01)
    sigma = 0.01 * np.std(task.u)
    want = sigma / (np.linalg.norm(fd) * c)
    np.testing.assert_allclose(floor.relative_std, [want], rtol=1e-5)
    np.testing.assert_allclose(floor.expected_max_relative_error, math.sqrt(2 / math.pi) * want, rtol=1e-5)
    with pytest.raises(ValueError, match="noise_level > 0"):
        noise_floor(eq, task, obs, unknowns=1, noise_level=0.0)
