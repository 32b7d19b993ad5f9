"""Direction distributions (numpy backend): second moment E[v vᵀ] = I, norms, orthogonality, errors.

Monte Carlo tolerances: each entry of the empirical second moment (1/M) Σ v vᵀ is a mean of M i.i.d.
products v_i v_j; its standard error is sd(v_i v_j)/√M. We allow z = 5 standard errors per entry (normal
approximation, M ≥ 4000; with the union bound over N² = 36 entries the failure probability is < 2·10⁻⁵).
"""

import math

import numpy as np
import pytest

from fg2u.directions import (
    DISTRIBUTIONS,
    Gaussian,
    NumpyOps,
    OrthogonalBlocks,
    Rademacher,
    Sphere,
    get_distribution,
)

N = 6
M = 12000
Z = 5.0
OPS = NumpyOps()


def _samples(dist, seed: int) -> np.ndarray:
    if isinstance(dist, OrthogonalBlocks):  # M directions in independent blocks of N orthogonal ones
        return dist.sample(OPS, seed, M, N, np.float64)
    return dist.sample(OPS, seed, M, N, np.float64)


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_second_moment_is_identity(name):
    v = _samples(get_distribution(name), seed=123)
    assert v.shape == (M, N)
    products = v[:, :, None] * v[:, None, :]  # (M, N, N)
    second = products.mean(axis=0)
    stderr = products.std(axis=0, ddof=1) / math.sqrt(M)
    tol = Z * stderr + 1e-12  # Rademacher/sphere diagonals are exactly 1 for every sample (stderr 0)
    assert np.all(np.abs(second - np.eye(N)) <= tol), (second, tol)


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_mean_is_zero(name):
    v = _samples(get_distribution(name), seed=7)
    stderr = v.std(axis=0, ddof=1) / math.sqrt(M)
    assert np.all(np.abs(v.mean(axis=0)) <= Z * stderr)


def test_rademacher_entries_are_signs():
    v = Rademacher().sample(OPS, 0, 50, N, np.float32)
    assert v.dtype == np.float32
    assert set(np.unique(v)) == {-1.0, 1.0}


def test_sphere_radius_is_sqrt_n():
    v = Sphere().sample(OPS, 1, 100, N, np.float64)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), math.sqrt(N), rtol=1e-12)


@pytest.mark.parametrize("b", [1, 3, N])
def test_orthogonal_rows_within_a_block(b):
    v = OrthogonalBlocks().sample(OPS, 2, b, N, np.float64)
    assert v.shape == (b, N)
    np.testing.assert_allclose(v @ v.T, N * np.eye(b), atol=1e-10)


def test_orthogonal_more_directions_than_dim_come_in_blocks():
    b = 2 * N + 3
    v = OrthogonalBlocks().sample(OPS, 3, b, N, np.float64)
    assert v.shape == (b, N)
    for start in range(0, b, N):
        block = v[start : start + N]
        np.testing.assert_allclose(block @ block.T, N * np.eye(len(block)), atol=1e-10)
    # different blocks are independent, not orthogonal to each other
    assert np.abs(v[:N] @ v[N : 2 * N].T).max() > 1e-3


def test_orthogonal_full_block_reproduces_any_vector():
    # (1/N) Σ_i (g·v_i) v_i = (1/N) Vᵀ V g = g when V has N orthogonal rows of norm √N.
    g = np.arange(1.0, N + 1)
    v = OrthogonalBlocks().sample(OPS, 4, N, N, np.float64)
    np.testing.assert_allclose((v @ g) @ v / N, g, rtol=1e-10)


def test_gaussian_dtype_and_determinism():
    a = Gaussian().sample(OPS, 5, 4, N, np.float32)
    b = Gaussian().sample(OPS, 5, 4, N, np.float32)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)


def test_get_distribution_errors_and_instances():
    assert isinstance(get_distribution("Rademacher"), Rademacher)
    inst = Sphere()
    assert get_distribution(inst) is inst
    with pytest.raises(ValueError, match="unknown direction distribution 'cauchy'"):
        get_distribution("cauchy")
    with pytest.raises(TypeError, match="distribution must be"):
        get_distribution(3)


@pytest.mark.parametrize("bad", [0, -1])
def test_sizes_must_be_positive(bad):
    with pytest.raises(ValueError, match="num_directions"):
        Rademacher().sample(OPS, 0, bad, N, np.float64)
    with pytest.raises(ValueError, match="dim"):
        Gaussian().sample(OPS, 0, 2, bad, np.float64)
    with pytest.raises(TypeError, match="num_directions"):
        Sphere().sample(OPS, 0, 2.0, N, np.float64)
