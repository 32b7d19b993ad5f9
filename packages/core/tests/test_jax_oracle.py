"""Exact estimators of fg2u.jax against closed forms of a linear-quadratic bi-level problem.

Inner dynamics (gradient descent on a quadratic, with per-step batches (s_t, c_t)):

    θ_0 = θ̄ + Dφ,   θ_{t+1} = θ_t − η(Aθ_t − s_t Bφ − c_t) = Mθ_t + η s_t Bφ + η c_t,   M = I − ηA,

outer loss F = ½‖Cθ_T − y‖² + ½λ‖φ‖². Hence

    dθ_T/dφ = M^T D + Σ_{t<T} M^{T−1−t} η s_t B,   ∇L = (dθ_T/dφ)ᵀ Cᵀ(Cθ_T − y) + λφ,

and truncating to the last K steps keeps only the terms t ≥ T − K. At the fixed point of the map with
s, c constant, θ* = A⁻¹(sBφ + c) and the implicit gradient is (sA⁻¹B)ᵀCᵀ(Cθ* − y) + λφ.

The oracles are float64 NumPy; the estimators run in float32. Tolerance: every inner step does O(n)-term
sums, each adding a relative rounding error ≤ n·ε₃₂; over T steps (‖M‖ < 1, so errors do not grow) the
worst case accumulates linearly, giving |ĝ − g| ≤ n·T·ε₃₂·S with S the magnitude scale of the terms of ∇L
(‖J‖‖C‖(‖C‖‖θ_T‖ + ‖y‖) + λ‖φ‖). It is a worst-case bound: observed errors are 10–100× smaller.
"""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from fg2u import UnrolledProblem  # noqa: E402
from fg2u.jax import (  # noqa: E402
    FG2U,
    FGU,
    RGU,
    TRGU,
    ConjugateGradient,
    HessianFree,
    Neumann,
    RGUCheckpointed,
    RGURecursive,
    meta_objective,
    unroll,
)

EPS32 = float(np.finfo(np.float32).eps)
n, m, p = 5, 4, 3
ETA = 0.1
LAM = 0.3


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(np.linspace(1.0, 9.0, n)) @ q.T  # SPD, ηA has eigenvalues in [0.1, 0.9]
    return dict(
        A=a,
        B=rng.normal(size=(n, m)),
        C=rng.normal(size=(p, n)),
        D=0.5 * rng.normal(size=(n, m)),
        theta_bar=rng.normal(size=n),
        y=rng.normal(size=p),
        phi=rng.normal(size=m),
    )


P = _setup()


def _problem(num_steps, batches=None):
    a, b, c, d = (jnp.asarray(P[k], jnp.float32) for k in "ABCD")
    theta_bar, y = jnp.asarray(P["theta_bar"], jnp.float32), jnp.asarray(P["y"], jnp.float32)

    def step(theta, phi, batch):
        s, offset = (1.0, 0.0) if batch is None else batch
        return theta - ETA * (a @ theta - s * (b @ phi) - offset)

    def outer(theta, phi, _):
        return 0.5 * jnp.sum((c @ theta - y) ** 2) + 0.5 * LAM * jnp.sum(phi**2)

    return UnrolledProblem(lambda phi: theta_bar + d @ phi, step, outer, num_steps, inner_batches=batches)


def _batches(num_steps, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 1.5, size=num_steps), rng.normal(size=(num_steps, n))


def _oracle(num_steps, batches=None, truncation=None):
    """float64 (θ_T, L, ∇L, scale) with the gradient truncated to the last `truncation` steps."""
    a, b, c, d, y, phi = P["A"], P["B"], P["C"], P["D"], P["y"], P["phi"]
    s, off = batches if batches is not None else (np.ones(num_steps), np.zeros((num_steps, n)))
    k = num_steps if truncation is None else min(truncation, num_steps)
    mm = np.eye(n) - ETA * a
    theta = P["theta_bar"] + d @ phi
    jac = d.copy() if k == num_steps else np.zeros((n, m))
    for t in range(num_steps):
        theta = mm @ theta + ETA * s[t] * (b @ phi) + ETA * off[t]
        jac = mm @ jac + (ETA * s[t] * b if t >= num_steps - k else 0.0)
    r = c @ theta - y
    grad = jac.T @ (c.T @ r) + LAM * phi
    loss = 0.5 * r @ r + 0.5 * LAM * phi @ phi
    scale = (
        np.linalg.norm(jac, 2)
        * np.linalg.norm(c, 2)
        * (np.linalg.norm(c, 2) * np.linalg.norm(theta) + np.linalg.norm(y))
    )
    return theta, loss, grad, scale + LAM * np.linalg.norm(phi)


def _phi():
    return jnp.asarray(P["phi"], jnp.float32)


def _assert_close(got, want, tol):
    err = np.abs(np.asarray(got, np.float64) - want).max()
    assert err <= tol, f"max error {err:.3g} > tolerance {tol:.3g}"


T = 30
BATCHES = _batches(T)
JB = tuple(jnp.asarray(x, jnp.float32) for x in BATCHES)


def test_unroll_and_meta_objective_match_closed_form():
    theta, loss, _, scale = _oracle(T, BATCHES)
    prob = _problem(T, JB)
    _assert_close(jax.jit(unroll)(prob, _phi()), theta, n * T * EPS32 * np.linalg.norm(theta) * 10)
    _assert_close(jax.jit(meta_objective(prob))(_phi()), loss, n * T * EPS32 * loss * 10)


@pytest.mark.parametrize(
    "estimator",
    [RGU(), FGU(), TRGU(T), TRGU(10 * T)]
    + [RGUCheckpointed(s) for s in (None, 1, 4, 7, T, 3 * T)]
    + [RGURecursive(k) for k in (2, 3, 4, T, 2 * T)],  # T = 30 is no power of 2, 3 or 4
    ids=lambda e: repr(e),
)
def test_exact_estimators_match_closed_form(estimator):
    _, loss, grad, scale = _oracle(T, BATCHES)
    g, aux = jax.jit(estimator.__call__)(_problem(T, JB), _phi(), None)
    assert g.dtype == jnp.float32 and g.shape == (m,)
    _assert_close(g, grad, n * T * EPS32 * scale)
    _assert_close(aux.outer_loss, loss, n * T * EPS32 * loss * 10)


@pytest.mark.parametrize("k", [1, 3, 17])
def test_truncated_matches_its_own_closed_form(k):
    _, _, grad_k, scale = _oracle(T, BATCHES, truncation=k)
    _, _, grad_full, _ = _oracle(T, BATCHES)
    assert np.abs(grad_k - grad_full).max() > 1e3 * n * T * EPS32 * scale  # the test can tell them apart
    g, _ = jax.jit(TRGU(k).__call__)(_problem(T, JB), _phi(), None)
    _assert_close(g, grad_k, n * T * EPS32 * scale)


def test_fg2u_with_a_full_orthogonal_frame_is_exact():
    # (1/N) Σ_i (∇L·v_i) v_i = ∇L when the N directions are orthogonal with norm √N.
    _, _, grad, scale = _oracle(T, BATCHES)
    g, _ = jax.jit(FG2U(num_directions=m, distribution="orthogonal").__call__)(
        _problem(T, JB), _phi(), jax.random.key(3)
    )
    _assert_close(g, grad, n * T * EPS32 * scale * m)
    basis = jnp.sqrt(float(m)) * jnp.eye(m)
    g, _ = jax.jit(FG2U().with_directions)(_problem(T, JB), _phi(), basis)
    _assert_close(g, grad, n * T * EPS32 * scale * m)


# ---- implicit estimators at a converged inner loop ----------------------------------------------------

T_CONV = 300  # ‖M‖ = 0.9: 0.9^300 ≈ 2e-14, the inner loop has converged to float32 precision


def _implicit_oracle(s=1.0, off=None):
    a, b, c, y, phi = P["A"], P["B"], P["C"], P["y"], P["phi"]
    off = np.zeros(n) if off is None else off
    theta = np.linalg.solve(a, s * (b @ phi) + off)
    dtheta = s * np.linalg.solve(a, b)
    g_theta = c.T @ (c @ theta - y)
    scale = np.linalg.norm(dtheta, 2) * np.linalg.norm(g_theta) + LAM * np.linalg.norm(phi)
    return theta, g_theta, dtheta.T @ g_theta + LAM * phi, scale


def test_converged_inner_loop_reaches_the_fixed_point():
    theta, *_ = _implicit_oracle()
    _assert_close(unroll(_problem(T_CONV), _phi()), theta, 10 * n * EPS32 * np.linalg.norm(theta) / (1 - 0.9))


@pytest.mark.parametrize(
    "estimator, terms",
    [(Neumann(300), 300), (Neumann(200, alpha=1.5), 200), (ConjugateGradient(2 * n), 2 * n)],
    ids=["neumann", "neumann-alpha1.5", "cg"],
)
def test_implicit_estimators_match_implicit_gradient(estimator, terms):
    # Neumann truncation error ≤ ρ^(K+1)·(1/(1−ρ)) with ρ = max|1 − αηλ(A)| ≤ 0.9: negligible here.
    _, _, grad, scale = _implicit_oracle()
    g, _ = jax.jit(estimator.__call__)(_problem(T_CONV), _phi(), None)
    _assert_close(g, grad, n * (terms + T_CONV) * EPS32 * scale)


def _neumann_closed_form(k, alpha, s_last, g_theta):
    a, b = P["A"], P["B"]
    r = np.eye(n) - alpha * ETA * a  # I − α(I − ∂Φ/∂θ)ᵀ with ∂Φ/∂θ = M
    w = alpha * sum(np.linalg.matrix_power(r, j) @ g_theta for j in range(k + 1))
    return ETA * s_last * b.T @ w + LAM * P["phi"]


@pytest.mark.parametrize("k, alpha", [(0, 1.0), (1, 1.0), (3, 0.7)])
def test_neumann_finite_terms_formula_uses_last_batch(k, alpha):
    theta_t, *_ = _oracle(T, BATCHES)
    g_theta = P["C"].T @ (P["C"] @ theta_t - P["y"])
    want = _neumann_closed_form(k, alpha, BATCHES[0][-1], g_theta)
    g, _ = jax.jit(Neumann(k, alpha=alpha).__call__)(_problem(T, JB), _phi(), None)
    scale = np.abs(want).max() + np.linalg.norm(g_theta) * np.linalg.norm(P["B"], 2)
    _assert_close(g, want, n * (T + k) * EPS32 * scale)


@pytest.mark.parametrize("alpha", [1.0, 1.0 / ETA])
def test_hessian_free_formula(alpha):
    theta_t, *_ = _oracle(T, BATCHES)
    g_theta = P["C"].T @ (P["C"] @ theta_t - P["y"])
    # ∇_φF + α(∂Φ/∂φ)ᵀ∇_θF with ∂Φ/∂φ = η s_{T−1} B (last batch); for α = 1/η: ∇_φF − ∂²ℓ/∂φ∂θ·∇_θF.
    want = LAM * P["phi"] + alpha * ETA * BATCHES[0][-1] * P["B"].T @ g_theta
    g, aux = jax.jit(HessianFree(alpha).__call__)(_problem(T, JB), _phi(), None)
    scale = np.abs(want).max() + alpha * ETA * np.linalg.norm(g_theta) * np.linalg.norm(P["B"], 2)
    _assert_close(g, want, n * T * EPS32 * scale)
    g0, _ = jax.jit(Neumann(0, alpha=alpha).__call__)(_problem(T, JB), _phi(), None)
    np.testing.assert_allclose(np.asarray(g0), np.asarray(g), rtol=1e-6, atol=1e-6)
    _, loss, _, _ = _oracle(T, BATCHES)
    _assert_close(aux.outer_loss, loss, n * T * EPS32 * loss * 10)
