"""FG²U is unbiased, its variance is the theoretical one (∝ 1/b), and chunking does not change it.

Variance of one estimate ĝ_b = (1/b) Σ_{i<b} (g·v_i) v_i of g = ∇L (N = dim φ), from E[vvᵀ] = I:

* Rademacher: ‖v‖² = N, so E‖(g·v)v‖² = N‖g‖² and E‖ĝ_b − g‖² = (N − 1)‖g‖²/b   (Lemma 3.1: ≤ (N+1)/b)
* Gaussian:   E[(g·v)²‖v‖²] = (N + 2)‖g‖²,          E‖ĝ_b − g‖² = (N + 1)‖g‖²/b
* Sphere √N:  as Rademacher,                        E‖ĝ_b − g‖² = (N − 1)‖g‖²/b
* Orthogonal (b ≤ N): ĝ_b = (N/b) P g with P a Haar-random rank-b projection, E‖ĝ_b − g‖² = (N/b − 1)‖g‖².

Tests:
* Unbiasedness: the mean of K single-direction estimates is itself an FG²U estimate with K directions, so
  E‖mean − g‖² ≤ (N+1)/K ‖g‖² (Lemma 3.1); by Markov's inequality it exceeds 100× that with probability
  ≤ 1%. (The seeds are fixed, so the test is deterministic; the bound says how unlucky a seed would be.)
* Variance: M independent estimates give errors e_j = ‖ĝ_j − g‖², whose mean must match the formula above
  within 10 standard errors (Chebyshev: a 1% failure probability).
"""

import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from fg2u import UnrolledProblem  # noqa: E402
from fg2u.jax import FG2U, RGU  # noqa: E402

EPS32 = float(np.finfo(np.float32).eps)
T = 10


def _problem():
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.normal(size=(4, 4)) / 2, jnp.float32)
    target = jnp.asarray(rng.normal(size=4), jnp.float32)

    def step(theta, phi, _):
        drive = jnp.concatenate([phi["a"], phi["b"].reshape(-1)[:2]])
        return jnp.tanh(w @ theta + drive) * 0.9 + 0.1 * theta + 0.05 * phi["b"].sum()

    def outer(theta, phi, _):
        return 0.5 * jnp.sum((theta - target) ** 2) + 0.1 * jnp.sum(phi["a"] ** 3)

    return UnrolledProblem(lambda phi: 0.1 * jnp.ones(4), step, outer, T)


PHI = {"a": jnp.array([0.3, -0.2], jnp.float32), "b": jnp.array([[0.1, 0.4], [-0.5, 0.2]], jnp.float32)}
N = 6
PROBLEM = _problem()
G_TREE, _ = jax.jit(RGU().__call__)(PROBLEM, PHI, None)


def _flat(tree):
    return np.concatenate([np.asarray(tree["a"], np.float64).ravel(), np.asarray(tree["b"], np.float64).ravel()])


G = _flat(G_TREE)
G2 = float(G @ G)


@pytest.mark.slow
@pytest.mark.parametrize("distribution", ["rademacher", "gaussian", "sphere", "orthogonal"])
def test_mean_of_many_estimates_converges_to_exact_gradient(distribution):
    # OrthogonalBlocks draws one QR per block of N directions (a Python loop): keep b/N small for it.
    k = 60 if distribution == "orthogonal" else 24_000
    est = FG2U(num_directions=k, distribution=distribution, chunk_size=6_000)
    g, aux = jax.jit(est.__call__)(PROBLEM, PHI, jax.random.key(11))
    err2 = float(np.sum((_flat(g) - G) ** 2))
    if distribution == "orthogonal":
        # b = 60 = 10 full blocks of N = 6 orthogonal directions scaled to norm √N: each block's
        # (1/N) Σ v vᵀ = I, so the mean is g exactly up to float32 round-off of O(b) terms (relative ~1e-6 per
        # entry, 1e-10 in the squared norm); 0, −g or 2g would give 1, 4 or 1 × ‖g‖²
        bound = 1e-8 * G2
    else:
        bound = 100 * (N + 1) / k * G2  # Markov, 1% failure probability
    assert err2 <= bound, f"‖mean − g‖² = {err2:.3g} > {bound:.3g}"
    _, loss = jax.jit(RGU().__call__)(PROBLEM, PHI, None)
    assert float(aux.outer_loss) == pytest.approx(float(loss.outer_loss), rel=1e-6)


def _errors(distribution, b, num_estimates=3000):
    est = FG2U(num_directions=b, distribution=distribution)
    keys = jax.random.split(jax.random.key(5), num_estimates)
    grads, _ = jax.jit(jax.vmap(est.__call__, in_axes=(None, None, 0)))(PROBLEM, PHI, keys)
    flat = np.concatenate(
        [np.asarray(grads["a"], np.float64), np.asarray(grads["b"], np.float64).reshape(num_estimates, -1)], 1
    )
    return np.sum((flat - G) ** 2, axis=1)


def _check_mean(errors, expected):
    stderr = errors.std(ddof=1) / math.sqrt(len(errors))
    tol = 10 * stderr + 1e3 * EPS32 * G2  # Chebyshev (1%) + float32 rounding of ĝ
    assert abs(errors.mean() - expected) <= tol, (
        f"mean squared error {errors.mean():.4g} vs exact {expected:.4g} ± {tol:.3g}"
    )
    return tol


@pytest.mark.slow
def test_rademacher_variance_is_exact_and_scales_as_one_over_b():
    e1, e8 = _errors("rademacher", 1), _errors("rademacher", 8)
    v1, v8 = (N - 1) * G2, (N - 1) * G2 / 8
    tol1, tol8 = _check_mean(e1, v1), _check_mean(e8, v8)
    # hence the ratio is 8 within the propagated tolerance
    ratio = e1.mean() / e8.mean()
    low, high = (v1 - tol1) / (v8 + tol8), (v1 + tol1) / (v8 - tol8)
    assert low <= ratio <= high and low > 4, (ratio, low, high)
    assert e1.mean() <= (N + 1) * G2  # Lemma 3.1 (in expectation)


@pytest.mark.parametrize(
    "distribution, b, factor",
    [("gaussian", 2, (N + 1) / 2), ("sphere", 2, (N - 1) / 2), ("orthogonal", 3, N / 3 - 1)],
)
@pytest.mark.slow
def test_variance_of_other_distributions(distribution, b, factor):
    _check_mean(_errors(distribution, b, num_estimates=2000), factor * G2)


@pytest.mark.slow
def test_orthogonal_with_b_equal_n_has_zero_variance():
    errors = _errors("orthogonal", N, num_estimates=50)
    assert errors.max() <= 1e4 * EPS32**2 * G2 * N


@pytest.mark.slow
def test_same_directions_same_result_with_or_without_chunking():
    b = 7
    dirs = jax.vmap(
        lambda k: {"a": jax.random.normal(k, (2,)), "b": jax.random.normal(jax.random.fold_in(k, 1), (2, 2))}
    )(jax.random.split(jax.random.key(2), b))
    results = []
    for chunk in (None, 1, 3, 10):  # 3 does not divide b = 7: padded last chunk
        g, aux = jax.jit(FG2U(chunk_size=chunk).with_directions)(PROBLEM, PHI, dirs)
        results.append(_flat(g))
    d = np.concatenate([np.asarray(dirs["a"]), np.asarray(dirs["b"]).reshape(b, -1)], 1)
    # Only the summation order differs: |Δ| ≤ b·ε₃₂·Σ_i |g·v_i||v_i| per coordinate (plus jvp rounding).
    tol = 4 * b * EPS32 * (np.abs(d @ G)[:, None] * np.abs(d)).sum(0) / b
    for r in results[1:]:
        assert np.all(np.abs(r - results[0]) <= tol + 1e-7)
    # and the estimate is the formula (1/b) Σ (g·v_i) v_i
    np.testing.assert_allclose(results[0], (d @ G) @ d / b, rtol=1e-4, atol=1e-5 * np.abs(G).max())


@pytest.mark.slow
def test_same_key_same_estimate_for_every_chunk_size():
    key = jax.random.key(9)
    g0, _ = jax.jit(FG2U(num_directions=10).__call__)(PROBLEM, PHI, key)
    for chunk in (4, 10):  # the b directions are drawn at once: chunking only changes the summation order
        g1, _ = jax.jit(FG2U(num_directions=10, chunk_size=chunk).__call__)(PROBLEM, PHI, key)
        np.testing.assert_allclose(_flat(g1), _flat(g0), rtol=1e-5, atol=1e-6)
    g2, _ = jax.jit(FG2U(num_directions=10).__call__)(PROBLEM, PHI, jax.random.key(10))
    assert np.abs(_flat(g2) - _flat(g0)).max() > 1e-4  # a different key gives a different estimate
