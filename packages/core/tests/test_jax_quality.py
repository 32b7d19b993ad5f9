"""fg2u.jax.gradient_quality against a linear-quadratic bi-level problem with closed-form meta-gradients.

Inner: θ_0 = 0, θ_{t+1} = θ_t − η(Aθ_t − Bφ) = Mθ_t + ηBφ, M = I − ηA, so θ_T = J_T φ with
J_K = Σ_{j<K} Mʲ ηB = A⁻¹(I − M^K)B. Outer: F = ½‖Cθ_T − y‖², hence

    ∇L = J_Tᵀ Cᵀ(C J_T φ − y),        TRGU(K) = J_Kᵀ Cᵀ(C J_T φ − y)   (θ_{T−K} held constant).

Oracles in float64 NumPy; estimators run in float32, so deterministic comparisons use a tolerance of
1e-4 (about 10³ ulps: T = 20 steps of n-term sums, each ≤ n·ε₃₂ relative, far below it).
For FG²U with b Rademacher directions, X = ‖ĝ − g‖² has mean (N − 1)/b ‖g‖² and, writing
u = (vvᵀ − I)g (mean 0, covariance Σ_u = ‖g‖²I + ggᵀ − 2 diag(g²)), ‖u‖² = (N − 2)(vᵀg)² + ‖g‖² and

    Var X = [b Var‖u‖² + 2b(b − 1) tr(Σ_u²)] / b⁴,   Var‖u‖² = 2(N − 2)²(‖g‖⁴ − Σ g_i⁴).

The mean of R repeats must lie within 5 standard deviations (√(Var X / R)) of (N − 1)/b ‖g‖².
"""

from __future__ import annotations

import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import fg2u  # noqa: E402
import fg2u.jax as fj  # noqa: E402
from fg2u.quality import fg2u_expected_squared_error  # noqa: E402

N_THETA, N_PHI, N_OUT, ETA = 6, 5, 3, 0.1


def _matrices(seed: int = 0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(N_THETA, N_THETA)))
    a = q @ np.diag(np.linspace(0.5, 5.0, N_THETA)) @ q.T
    return (
        a,
        rng.normal(size=(N_THETA, N_PHI)),
        rng.normal(size=(N_OUT, N_THETA)),
        rng.normal(size=N_OUT),
        rng.normal(size=N_PHI),
    )


A, B, C, Y, PHI = _matrices()


def _jac(k: int) -> np.ndarray:
    m = np.eye(N_THETA) - ETA * A
    return np.linalg.solve(A, (np.eye(N_THETA) - np.linalg.matrix_power(m, k)) @ B)


def exact_grad(T: int, y: np.ndarray = Y, truncation: int | None = None) -> np.ndarray:
    j_t = _jac(T)
    residual = C @ j_t @ PHI - y
    return _jac(truncation or T).T @ C.T @ residual


def make_problem(T: int, y=Y) -> fg2u.UnrolledProblem:
    a, b, c = (jnp.asarray(x, jnp.float32) for x in (A, B, C))
    return fg2u.UnrolledProblem(
        init=lambda phi: jnp.zeros(N_THETA, jnp.float32),
        step=lambda theta, phi, batch: theta - ETA * (a @ theta - b @ phi),
        outer_loss=lambda theta, phi, batch: 0.5 * jnp.sum((c @ theta - batch) ** 2),
        num_steps=T,
        outer_batch=jnp.asarray(y, jnp.float32),
    )


def _cos(u: np.ndarray, v: np.ndarray) -> float:
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def test_reference_to_itself_and_truncation_against_closed_form() -> None:
    T = 20
    phi = jnp.asarray(PHI, jnp.float32)
    results = fj.gradient_quality(
        make_problem(T), phi, {"RGU": fj.RGU(), "TRGU K=2": fj.TRGU(truncation=2)}, num_repeats=2
    )
    rgu, trgu = results
    assert rgu.name == "RGU" and rgu.reference == "RGU" and rgu.num_repeats == 2 and rgu.meta_dim == N_PHI
    assert rgu.cosine_mean == pytest.approx(1.0, abs=1e-6) and rgu.relative_error_mean == 0.0
    assert rgu.norm_ratio_mean == 1.0 and rgu.cosine_std == 0.0
    g, g_k = exact_grad(T), exact_grad(T, truncation=2)
    assert trgu.cosine_mean == pytest.approx(_cos(g_k, g), abs=1e-4)
    assert trgu.relative_error_mean == pytest.approx(np.linalg.norm(g_k - g) / np.linalg.norm(g), rel=1e-4)
    assert trgu.norm_ratio_mean == pytest.approx(np.linalg.norm(g_k) / np.linalg.norm(g), rel=1e-4)
    for q in results:
        assert q.memory_bytes is not None and q.memory_bytes >= 0 and "temp" in q.memory_measure
        assert q.seconds_per_estimate > 0 and q.compile_seconds is not None and q.compile_seconds > 0


def test_reference_fgu_confirms_rgu_is_exact() -> None:
    phi = jnp.asarray(PHI, jnp.float32)
    (rgu,) = fj.gradient_quality(make_problem(15), phi, [fj.RGU()], reference=fj.FGU(), num_repeats=1)
    assert rgu.reference == "FGU" and rgu.relative_error_mean < 1e-4


@pytest.mark.slow
def test_fg2u_squared_error_matches_rademacher_variance() -> None:
    T, b, R = 10, 2, 300
    g = exact_grad(T)
    norm2, n = float(g @ g), N_PHI
    (q,) = fj.gradient_quality(
        make_problem(T),
        jnp.asarray(PHI, jnp.float32),
        {"FG2U": fj.FG2U(num_directions=b)},
        num_repeats=R,
        key=jax.random.PRNGKey(7),
    )
    x = (np.asarray(q.relative_errors) ** 2) * norm2  # ‖ĝ_r − g‖²
    mean = fg2u_expected_squared_error(norm2, n, b)
    sigma_u = norm2 * np.eye(n) + np.outer(g, g) - 2 * np.diag(g**2)
    var_u2 = 2 * (n - 2) ** 2 * (norm2**2 - float(np.sum(g**4)))
    var_x = (b * var_u2 + 2 * b * (b - 1) * float(np.trace(sigma_u @ sigma_u))) / b**4
    assert abs(x.mean() - mean) < 5 * math.sqrt(var_x / R), (x.mean(), mean, math.sqrt(var_x / R))
    # more directions, better cosine (same keys: common random numbers do not matter for the order)
    (q8,) = fj.gradient_quality(
        make_problem(T), jnp.asarray(PHI, jnp.float32), [fj.FG2U(num_directions=64)], num_repeats=20
    )
    assert q8.cosine_mean > q.cosine_mean


def test_problem_function_with_per_repeat_inputs() -> None:
    """A different target y per repeat: the reference is recomputed per repeat, TRGU's cosines follow."""
    T, K = 12, 3
    ys = [np.random.default_rng(s).normal(size=N_OUT) for s in range(3)]
    results = fj.gradient_quality(
        lambda y: make_problem(T, y),
        jnp.asarray(PHI, jnp.float32),
        {"rgu": fj.RGU(), "trgu": fj.TRGU(truncation=K)},
        inputs=[jnp.asarray(y, jnp.float32) for y in ys],
        settings={"trgu": {"K": K}},
    )
    rgu, trgu = results
    assert rgu.num_repeats == 3 and rgu.cosines == pytest.approx((1.0,) * 3, abs=1e-6)
    expected = [_cos(exact_grad(T, y, K), exact_grad(T, y)) for y in ys]
    assert trgu.cosines == pytest.approx(tuple(expected), abs=1e-4)
    assert trgu.settings == {"K": K} and rgu.settings == {}


@pytest.mark.slow
def test_memory_of_rgu_grows_with_T_and_fg2u_does_not() -> None:
    """A nonlinear step (θ − η(A tanh θ − Bφ)): reverse mode must keep every θ_t (for a linear step XLA
    needs none of them, so the growth would not show)."""
    phi = jnp.asarray(PHI, jnp.float32)
    a, b, c = (jnp.asarray(x, jnp.float32) for x in (A, B, C))
    mem = {}
    for T in (50, 400):
        problem = fg2u.UnrolledProblem(
            init=lambda phi: jnp.zeros(N_THETA, jnp.float32),
            step=lambda theta, phi, batch: theta - ETA * (a @ jnp.tanh(theta) - b @ phi),
            outer_loss=lambda theta, phi, batch: 0.5 * jnp.sum((c @ theta) ** 2),
            num_steps=T,
        )
        rgu, fg = fj.gradient_quality(problem, phi, [fj.RGU(), fj.FG2U(num_directions=1)], num_repeats=1)
        mem[T] = (rgu.memory_bytes, fg.memory_bytes)
    # RGU stores the T inner states (T·N_THETA float32 at least); FG²U's temporaries do not depend on T.
    assert mem[400][0] - mem[50][0] >= 350 * N_THETA * 4
    assert mem[400][1] == mem[50][1]


def test_bad_arguments_are_explained() -> None:
    phi = jnp.asarray(PHI, jnp.float32)
    with pytest.raises(ValueError, match="inputs"):
        fj.gradient_quality(lambda y: make_problem(3, y), phi, [fj.RGU()])
    with pytest.raises(ValueError, match="inputs is only used"):
        fj.gradient_quality(make_problem(3), phi, [fj.RGU()], inputs=[1])
    with pytest.raises(ValueError, match="unique"):
        fj.gradient_quality(make_problem(3), phi, [fj.RGU(), fj.RGU()])
    with pytest.raises(ValueError, match="empty"):
        fj.gradient_quality(make_problem(3), phi, {})
    with pytest.raises(TypeError, match="not callable"):
        fj.gradient_quality(make_problem(3), phi, {"x": 3})
    with pytest.raises(TypeError, match="UnrolledProblem"):
        fj.gradient_quality(42, phi, [fj.RGU()])
    with pytest.raises(ValueError, match="num_repeats"):
        fj.gradient_quality(make_problem(3), phi, [fj.RGU()], num_repeats=0)


def test_stateful_estimator_keeps_its_state_across_repeats() -> None:
    """On a fixed problem the running control variate c_k → g, so its error ‖g − c_k‖²(N − 1)/b falls far below
    plain FG²U's (N − 1)/b ‖g‖² once warmed up; the first repeat (c = 0) is plain FG²U with the same key."""
    if not hasattr(fj, "RunningControlVariate"):
        pytest.skip("this fg2u.jax has no RunningControlVariate")
    T, b, R = 10, 2, 40
    phi = jnp.asarray(PHI, jnp.float32)
    plain, running = fj.gradient_quality(
        make_problem(T),
        phi,
        {"plain": fj.FG2U(num_directions=b), "running": fj.RunningControlVariate(fj.FG2U(num_directions=b), decay=0.9)},
        num_repeats=R,
        key=jax.random.PRNGKey(3),
    )
    assert running.relative_errors[0] == pytest.approx(plain.relative_errors[0], rel=1e-5)
    late_plain = np.mean(np.square(plain.relative_errors[R // 2 :]))
    late_running = np.mean(np.square(running.relative_errors[R // 2 :]))
    assert late_running < 0.5 * late_plain, (late_running, late_plain)
