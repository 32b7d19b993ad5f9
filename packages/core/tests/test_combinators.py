"""The core's combinators (fg2u.estimators.combinators) on both backends (the ``side`` fixture), against the
closed-form quadratic.

Problem: θ_{t+1} = θ_t − η(Aθ_t − Bφ), θ_0 = 0, F = ½‖Cθ_T − y‖². Then θ_T = Mφ with
M = (I − (I − ηA)^T) A⁻¹ B, and the exact meta-gradient is g = Mᵀ Cᵀ (C M φ − y) (float64 numpy oracle).

Exact identities (no randomness):
* ControlVariate with an exact surrogate and scale 1 returns g for any directions (the residual is 0);
* with the 2^N sign vectors as directions, (1/b) Σ v vᵀ = I, and each half of that list in lexicographic
  order is balanced too, so every control-variate form returns g exactly whatever the surrogate's bias.
Statistical (fixed seeds): the mean of M estimates is within 5 standard errors of g per coordinate
(a 5σ z-test: a false failure has probability < 1e-5 over the N coordinates).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

N, T, ETA = 3, 12, 0.2
RNG = np.random.default_rng(3)
_A0 = RNG.normal(size=(4, 4))
A = _A0 @ _A0.T / 4 + 0.5 * np.eye(4)
B = RNG.normal(size=(4, N))
C = RNG.normal(size=(2, 4))
Y = RNG.normal(size=2)
PHI = RNG.normal(size=N)
SIGNS = np.array(list(itertools.product([-1.0, 1.0], repeat=N)))  # 2^N rows, lexicographic


def oracle_gradient():
    m = (np.eye(4) - np.linalg.matrix_power(np.eye(4) - ETA * A, T)) @ np.linalg.solve(A, B)
    return m.T @ C.T @ (C @ m @ PHI - Y)


ETAS = np.full(T, ETA)  # a constant inner step size, passed as the inner batches


def make_problem(side):
    return side.linear_problem(A, B, C, Y, ETAS)


def test_oracle_matches_rgu(side):
    g, _ = side.m.RGU()(make_problem(side), side.array(PHI), None)
    np.testing.assert_allclose(side.np(g), oracle_gradient(), rtol=1e-10)


def test_scaled_multiplies_the_estimate(side):
    g, aux = side.m.Scaled(side.m.RGU(), scale=-2.5)(make_problem(side), side.array(PHI), None)
    np.testing.assert_allclose(side.np(g), -2.5 * oracle_gradient(), rtol=1e-10)
    assert side.m.Scaled(side.m.HessianFree(), 3.0).display_name == "HessianFree"
    assert side.m.Scaled(side.m.HessianFree(), 3.0).settings()["scale"] == 3.0


@pytest.mark.slow
def test_control_variate_with_exact_surrogate_has_no_variance(side):
    est = side.m.ControlVariate(side.m.FG2U(num_directions=2), side.m.RGU(), scale=1.0)
    for seed in range(3):
        g, _ = est(make_problem(side), side.array(PHI), side.key(seed))
        np.testing.assert_allclose(side.np(g), oracle_gradient(), rtol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1.0, 0.3, None])
def test_control_variate_is_exact_over_balanced_directions_whatever_the_surrogate(side, scale):
    fg = side.m.FG2U(num_directions=len(SIGNS), distribution=side.fixed(SIGNS))
    est = side.m.ControlVariate(fg, side.m.TRGU(1), scale=scale)  # TRGU(1) is strongly biased here
    g, _ = est(make_problem(side), side.array(PHI), side.key(0))
    np.testing.assert_allclose(side.np(g), oracle_gradient(), rtol=1e-9)
    biased, _ = side.m.TRGU(1)(make_problem(side), side.array(PHI), None)
    assert np.linalg.norm(side.np(biased) - oracle_gradient()) > 0.1 * np.linalg.norm(oracle_gradient())


def _z_test(samples, mean):
    samples = np.asarray(samples)
    stderr = samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    assert np.all(np.abs(samples.mean(axis=0) - mean) <= 5 * stderr + 1e-12), (samples.mean(axis=0), mean, stderr)


@pytest.mark.slow
def test_cross_fitted_control_variate_is_unbiased_and_reduces_variance(side):
    problem, phi, g = make_problem(side), side.array(PHI), oracle_gradient()
    # b = 16: the cross-fitted scale's own noise adds about 4/b of plain FG2U's error (see _controlled)
    cv = side.fast(side.m.ControlVariate(side.m.FG2U(num_directions=16), side.m.TRGU(4), scale=None).__call__)
    plain = side.fast(side.m.FG2U(num_directions=16).__call__)
    cv_samples = [side.np(cv(problem, phi, side.key(s))[0]) for s in range(300)]
    plain_samples = [side.np(plain(problem, phi, side.key(10_000 + s))[0]) for s in range(300)]
    _z_test(cv_samples, g)
    err_cv = np.mean(np.sum((np.asarray(cv_samples) - g) ** 2, axis=1))
    err_plain = np.mean(np.sum((np.asarray(plain_samples) - g) ** 2, axis=1))
    aligned = side.np(side.m.TRGU(4)(problem, phi, None)[0])
    cos2 = (aligned @ g) ** 2 / (aligned @ aligned * (g @ g))
    # ideal factor 1 − cos² (optimal scale), plus the scale's noise 4/b and the sampling error of 300 draws
    assert err_cv < (1 - cos2 + 4 / 16 + 0.15) * err_plain, (err_cv, err_plain, cos2)


@pytest.mark.slow
def test_running_control_variate_is_unbiased_and_learns_a_fixed_gradient(side):
    problem, phi, g = make_problem(side), side.array(PHI), oracle_gradient()
    est = side.m.RunningControlVariate(side.m.FG2U(num_directions=4), decay=0.8)
    first, _ = est(problem, phi, side.key(7))  # fresh state: plain FG2U with the same directions
    plain, _ = side.m.FG2U(num_directions=4)(problem, phi, side.key(7))
    np.testing.assert_allclose(side.np(first), side.np(plain), rtol=1e-9)
    errors, samples = [], []
    step = side.fast(est.estimate)
    for chain in range(40):
        state = est.init(phi)
        for k in range(15):
            grad, _, state = step(problem, phi, side.key(1000 * chain + k), state)
        samples.append(side.np(grad))
        errors.append(np.sum((side.np(grad) - g) ** 2))
    _z_test(samples, g)
    plain_err = (N - 1) / 4 * np.sum(g**2)  # E‖ĝ − g‖² of FG2U, Rademacher, b = 4
    assert np.mean(errors) < 0.3 * plain_err


def test_combinator_errors_name_the_argument(side):
    with pytest.raises(TypeError, match="estimator must be FG2U or FG2U_ZO"):
        side.m.ControlVariate(side.m.RGU(), side.m.RGU())
    with pytest.raises(ValueError, match="num_directions must be >= 2 when scale=None"):
        side.m.RunningControlVariate(side.m.FG2U(num_directions=1), scale=None)
    with pytest.raises(ValueError, match="decay"):
        side.m.RunningControlVariate(side.m.FG2U(num_directions=2), decay=1.0)
    with pytest.raises(TypeError, match="surrogate"):
        side.m.ControlVariate(side.m.FG2U(2), "HessianFree")


def test_running_control_variate_default_decay_is_a_long_memory(side):
    """The running mean diverges for a memory L = 1/(1 − β) ≤ r = (N − 1)/b; None gives L = 4(1 + r)."""
    est = side.m.RunningControlVariate(side.m.FG2U(num_directions=16))
    r = (641 - 1) / 16
    beta = est.decay_for(641)
    assert 1 / (1 - beta) == pytest.approx(4 * (1 + r))
    assert beta**2 + (1 - beta) ** 2 * r < 1  # contracting at a fixed meta-gradient
    assert 0.9**2 + 0.1**2 * r > 1  # β = 0.9 is not, at N/b = 40
    assert side.m.RunningControlVariate(side.m.FG2U(2), decay=0.5).decay_for(641) == 0.5


def test_states_are_typed_named_tuples(side):
    from fg2u.estimators import RunningMeanState, TwoPhaseState

    problem, phi = make_problem(side), side.array(PHI)
    two = side.m.TwoPhase(side.m.HessianFree(), side.m.RGU(), switch_step=1)
    state = two.init(phi)
    assert isinstance(state, TwoPhaseState) and int(state.meta_step) == 0
    assert state.first is None and state.second is None  # stateless phases
    _, _, state = two.estimate(problem, phi, None, state)
    assert isinstance(state, TwoPhaseState) and int(state.meta_step) == 1
    running = side.m.RunningControlVariate(side.m.FG2U(num_directions=2), decay=0.5)
    state = running.init(phi)
    assert isinstance(state, RunningMeanState) and int(state.count) == 0 and not np.any(side.np(state.mean))
    grad, _, state = running.estimate(problem, phi, side.key(0), state)
    assert isinstance(state, RunningMeanState) and int(state.count) == 1
    np.testing.assert_allclose(side.np(state.mean), 0.5 * side.np(grad), rtol=1e-12)  # m₁ = β·0 + (1 − β)ĝ₀
