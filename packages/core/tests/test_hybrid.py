"""The hybrid estimator (reverse mode through the last K steps, FG²U tangents before them) on both backends.

Oracle: the linear inner loop θ_{t+1} = θ_t − η_t(Aθ_t − Bφ), θ_0 = 0, step sizes η_t passed as
``inner_batches`` (so a wrong split of the batches shows), F = ½‖Cθ_T − y‖². With P_t = I − η_t A,

    θ_T = Mφ,   M = Σ_{t<T} (Π_{t<s<T} P_s) η_t B = M_head + M_tail   (M_head: the terms t < H = T − K),

the exact meta-gradient is g = Mᵀ Cᵀ r with r = CMφ − y, the reverse part of the hybrid is
∂_φG = M_tailᵀ Cᵀ r, and the part estimated with directions is h = J_headᵀ ∇_θG = M_headᵀ Cᵀ r (float64 numpy).

Exact identities (no randomness):
* K ≥ T is RGU; the zero direction gives ∂_φG = g − h (= TRGU(K)); the 2^N sign vectors ((1/b) Σ v vᵀ = I) give g;
* averaging over the 2^N sign vectors one at a time is the exact expectation over a Rademacher direction, so
  E‖ĝ − g‖² = (N − 1)/b ‖h‖² for the hybrid and (N − 1)/b ‖g‖² for FG2U (E‖(v vᵀ − I)x‖² = (‖v‖² − 1)‖x‖²,
  ‖v‖² = N): the hybrid's error is FG2U's times ‖h‖²/‖g‖². On a contracting inner map (‖P_t‖ ≤ ρ < 1)
  M_head carries the factor Π_{s ≥ H} P_s, so ‖h‖ = O(ρ^K) while g keeps the last steps' terms.
Statistical (fixed seeds, b = 4, 200 draws): 5σ z-tests of the mean (unbiasedness) and of the mean squared
error against its exact value (a false failure has probability < 1e-5 per coordinate).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

N, T = 3, 12
RNG = np.random.default_rng(3)
B = RNG.normal(size=(4, N))
C = RNG.normal(size=(2, 4))
Y = RNG.normal(size=2)
PHI = RNG.normal(size=N)
SIGNS = np.array(list(itertools.product([-1.0, 1.0], repeat=N)))  # 2^N rows
_A0 = RNG.normal(size=(4, 4))
_Q = np.linalg.qr(RNG.normal(size=(4, 4)))[0]
PROBLEMS = {
    # eigenvalues of A in [0.5, ~3], η ≈ 0.2: the early steps matter (ρ up to 0.9)
    "mild": (_A0 @ _A0.T / 4 + 0.5 * np.eye(4), 0.2 * (1 + 0.3 * np.sin(np.arange(T)))),
    # eigenvalues 2..4, η ≈ 0.2: ρ = max|1 − ηλ| ≈ 0.6, the last steps carry most of the gradient
    "contracting": (_Q @ np.diag([2.0, 2.5, 3.0, 4.0]) @ _Q.T, 0.2 * (1 + 0.1 * np.cos(np.arange(T)))),
}


def oracle(kind, k):
    """``(g, h)``: the exact meta-gradient and its part through θ_{T−K} (numpy float64)."""
    a, etas = PROBLEMS[kind]
    head = max(T - k, 0)
    m_head, m_tail = np.zeros((4, N)), np.zeros((4, N))
    for t in range(T):
        prod = np.eye(4)
        for s in range(t + 1, T):
            prod = (np.eye(4) - etas[s] * a) @ prod
        term = prod @ (etas[t] * B)
        if t < head:
            m_head += term
        else:
            m_tail += term
    r = C @ (m_head + m_tail) @ PHI - Y
    return (m_head + m_tail).T @ C.T @ r, m_head.T @ C.T @ r


def make_problem(side, kind="mild"):
    a, etas = PROBLEMS[kind]
    return side.linear_problem(a, B, C, Y, etas)


def make_adam_problem(side):
    a, etas = PROBLEMS["mild"]
    return side.adam_problem(a, B, C, Y, etas, lr=0.05)


def _z_test(samples, mean, what):
    samples = np.asarray(samples)
    stderr = samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    assert np.all(np.abs(samples.mean(axis=0) - mean) <= 5 * stderr + 1e-12), (what, samples.mean(axis=0), mean, stderr)


@pytest.mark.parametrize("k", [T, T + 5])
def test_reverse_steps_at_least_T_is_rgu(side, k):
    problem, phi = make_problem(side), side.array(PHI)
    exact, exact_aux = side.fast(side.m.RGU().__call__)(problem, phi, None)
    g, aux = side.fast(side.m.Hybrid(num_directions=3, reverse_steps=k).__call__)(problem, phi, None)  # no key
    np.testing.assert_array_equal(side.np(g), side.np(exact))
    np.testing.assert_array_equal(side.np(aux.outer_loss), side.np(exact_aux.outer_loss))
    np.testing.assert_allclose(side.np(g), oracle("mild", k)[0], rtol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("kind,k", [("mild", 1), ("mild", T - 1), ("contracting", 4)])
def test_zero_direction_gives_the_reverse_part_and_sign_vectors_the_gradient(side, kind, k):
    problem, phi = make_problem(side, kind), side.array(PHI)
    g, h = oracle(kind, k)
    est = side.m.Hybrid(num_directions=len(SIGNS), reverse_steps=k)
    reverse_part, aux = side.fast(est.with_directions)(problem, phi, side.array(np.zeros((1, N))))
    np.testing.assert_allclose(side.np(reverse_part), g - h, rtol=1e-10, atol=1e-12)
    trgu, _ = side.fast(side.m.TRGU(k).__call__)(problem, phi, None)  # the reverse part is TRGU(K)
    np.testing.assert_allclose(side.np(reverse_part), side.np(trgu), rtol=1e-12, atol=1e-14)
    rgu_loss = side.fast(side.m.RGU().__call__)(problem, phi, None)[1].outer_loss
    np.testing.assert_allclose(side.np(aux.outer_loss), side.np(rgu_loss), rtol=1e-12)
    for chunk in (None, 3):  # 3 does not divide 2^N: a padded last chunk
        fixed = side.m.Hybrid(len(SIGNS), k, distribution=side.fixed(SIGNS), chunk_size=chunk)
        exact, _ = side.fast(fixed.__call__)(problem, phi, side.key(0))
        np.testing.assert_allclose(side.np(exact), g, rtol=1e-10)


def test_error_is_the_predicted_fraction_of_fg2u_error_over_all_sign_vectors(side):
    """Exact expectations: each of the 2^N sign vectors as the single direction (b = 1)."""
    problem, phi, k = make_problem(side, "contracting"), side.array(PHI), 3
    g, h = oracle("contracting", k)
    hybrid = side.fast(side.m.Hybrid(1, reverse_steps=k).with_directions)
    plain = side.fast(side.m.FG2U(1).with_directions)
    err_h = np.mean([np.sum((side.np(hybrid(problem, phi, side.array(v[None]))[0]) - g) ** 2) for v in SIGNS])
    err_p = np.mean([np.sum((side.np(plain(problem, phi, side.array(v[None]))[0]) - g) ** 2) for v in SIGNS])
    np.testing.assert_allclose(err_h, (N - 1) * np.sum(h**2), rtol=1e-8)
    np.testing.assert_allclose(err_p, (N - 1) * np.sum(g**2), rtol=1e-8)
    factor = np.sum(h**2) / np.sum(g**2)  # the derived factor (≈ 0.04 here; ρ^{2K} ≈ 0.6^6 ≈ 0.05)
    assert factor < 0.1 and np.isclose(err_h / err_p, factor, rtol=1e-8), (factor, err_h, err_p)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mild", "contracting"])
def test_unbiased_with_random_directions_and_error_as_predicted(side, kind):
    problem, phi, k, b, draws = make_problem(side, kind), side.array(PHI), 3, 4, 200
    g, h = oracle(kind, k)
    hybrid = side.fast(side.m.Hybrid(b, reverse_steps=k).__call__)
    plain = side.fast(side.m.FG2U(b).__call__)
    samples = np.array([side.np(hybrid(problem, phi, side.key(s))[0]) for s in range(draws)])
    plain_samples = np.array([side.np(plain(problem, phi, side.key(s))[0]) for s in range(draws)])  # same v
    _z_test(samples, g, "mean of the hybrid estimates")
    err, plain_err = np.sum((samples - g) ** 2, axis=1), np.sum((plain_samples - g) ** 2, axis=1)
    _z_test(err, (N - 1) / b * np.sum(h**2), "hybrid E‖ĝ − g‖²")
    _z_test(plain_err, (N - 1) / b * np.sum(g**2), "FG2U E‖ĝ − g‖²")
    assert err.mean() < plain_err.mean()
    if kind == "contracting":
        assert err.mean() < 0.2 * plain_err.mean(), (err.mean(), plain_err.mean())


@pytest.mark.slow
def test_inner_optimiser_state_with_an_integer_counter(side):
    problem, phi, k = make_adam_problem(side), side.array(PHI), 4
    exact, _ = side.fast(side.m.RGU().__call__)(problem, phi, None)
    state = problem.init(phi)
    counter = state.opt_state[0].count if side.label == "jax" else state.opt_state.count
    assert "int" in str(counter.dtype)
    est = side.fast(side.m.Hybrid(len(SIGNS), k, distribution=side.fixed(SIGNS)).__call__)
    g, aux = est(problem, phi, side.key(0))  # the sign vectors: exact up to rounding, Adam is nonlinear
    np.testing.assert_allclose(side.np(g), side.np(exact), rtol=1e-9, atol=1e-12)
    random, _ = side.fast(side.m.Hybrid(2, k).__call__)(problem, phi, side.key(1))
    assert np.all(np.isfinite(side.np(random))) and np.isfinite(side.np(aux.outer_loss))


@pytest.mark.slow
def test_jit_equals_eager_in_jax(jax_side):
    s = jax_side
    problem, phi, key = make_problem(s), s.array(PHI), s.key(5)
    est = s.m.Hybrid(num_directions=5, reverse_steps=4, chunk_size=2)
    eager, eager_aux = est(problem, phi, key)
    jitted, jit_aux = s.jax.jit(est)(problem, phi, key)
    np.testing.assert_allclose(s.np(jitted), s.np(eager), rtol=1e-12)
    np.testing.assert_allclose(s.np(jit_aux.outer_loss), s.np(eager_aux.outer_loss), rtol=1e-12)
    # chunking does not change the estimate (directions depend on (key, i) only), and FG2U draws the same ones
    whole, _ = s.jax.jit(s.m.Hybrid(num_directions=5, reverse_steps=4))(problem, phi, key)
    np.testing.assert_allclose(s.np(whole), s.np(eager), rtol=1e-12)


def test_same_directions_as_fg2u_and_same_estimate_in_both_backends(jax_side, torch_side):
    js, ts = jax_side, torch_side
    rows = np.random.default_rng(0).choice([-1.0, 1.0], size=(6, N))
    out = [s.np(s.m.Hybrid(6, 5).with_directions(make_problem(s), s.array(PHI), s.array(rows))[0]) for s in (js, ts)]
    np.testing.assert_allclose(out[0], out[1], rtol=1e-10)
    g, h = oracle("mild", 5)
    np.testing.assert_allclose(out[0], g - h + rows.T @ (rows @ h) / 6, rtol=1e-10)


def test_settings_names_and_errors(side):
    import fg2u.estimators as est

    assert "hybrid" in est.names() and est.get_spec("Hybrid") is est.Hybrid
    made = side.m.make("hybrid", num_directions=8, reverse_steps=5)
    assert made == side.m.Hybrid(8, 5) and isinstance(made, est.Hybrid) and isinstance(made, est.RandomDirections)
    settings = made.settings()
    assert settings == {
        "estimator": "Hybrid",
        "num_directions": 8,
        "reverse_steps": 5,
        "distribution": "rademacher",
        "chunk_size": None,
        "check_finite": False,
    }
    json.dumps(settings)
    with pytest.raises(ValueError, match="reverse_steps"):
        side.m.Hybrid(4, reverse_steps=0)
    with pytest.raises(TypeError, match="reverse_steps"):
        side.m.Hybrid(4, reverse_steps=2.5)
    with pytest.raises(ValueError, match="num_directions"):
        side.m.Hybrid(0)
    with pytest.raises(TypeError, match="Hybrid is randomised"):
        side.m.Hybrid(2, reverse_steps=3)(make_problem(side), side.array(PHI), None)
    with pytest.raises(TypeError, match="directions"):
        side.m.Hybrid(2, 3).with_directions(make_problem(side), side.array(PHI), side.array(np.zeros((2, N + 1))))
