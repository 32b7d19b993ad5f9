"""The classic baselines (:mod:`fg2u_bench_pde.baselines`) on black boxes with known answers.

Oracles: a linear residual ``r(φ) = Aφ − b`` (least squares: the normal-equations solution, exact up to the
finite-difference Jacobian's round-off), a quadratic for Nelder–Mead, and SciPy's own counters for the solver
calls (every residual evaluation is one call: SciPy's ``nfev`` plus K per Jacobian).
"""

import math

import numpy as np
import pytest

from fg2u_bench_pde.baselines import BlackBoxFit, run_least_squares, run_nelder_mead


class LinearFit(BlackBoxFit):
    """``r(φ) = Aφ − b`` with ``A (P, K)``; the anytime metric is the distance to the least-squares solution."""

    curve_metric = "distance"

    def __init__(self, a, b, x0, prior=None, budget=1000, scan_calls=0):
        self.a, self.b, self.x0 = np.asarray(a), np.asarray(b), np.asarray(x0, dtype=np.float64)
        self.prior_root = prior
        self.baseline_budget = budget
        self.scan_calls = scan_calls
        stacked_a = self.a if prior is None else np.vstack([self.a, prior])
        stacked_b = self.b if prior is None else np.concatenate([self.b, np.zeros(len(x0))])
        self.solution = np.linalg.lstsq(stacked_a, stacked_b, rcond=None)[0]
        self.calls = 0
        self.seen = []

    def fit_start(self):
        return self.x0.copy()

    def residual_function(self, batch_sizes):
        def residuals(phis):
            self.calls += len(phis)
            self.seen.extend(np.array(phis))
            return phis @ self.a.T - self.b[None, :]

        return residuals, 0.0, None

    def curve_value(self, phi):
        return float(np.linalg.norm(phi - self.solution))

    def final_metrics(self, phi):
        return {"distance": self.curve_value(phi)}


def _problem(k=3, p=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(p, k)), rng.normal(size=p)


def test_least_squares_finds_the_linear_solution_and_counts_every_solver_call():
    a, b = _problem()
    fit = LinearFit(a, b, x0=np.ones(3), scan_calls=5)
    result = run_least_squares(fit, {})
    # forward differences of a linear map are exact up to round-off ε_mach·|r|/h ≈ 1e-8 relative
    np.testing.assert_allclose(result.phi, fit.solution, atol=1e-6)
    # the residual function was called once per row; the scan's 5 calls come on top
    assert result.metrics["solver_calls"] == fit.calls + 5
    curve = result.curve
    calls = curve.cost["solver_calls"]
    assert calls[0] == 5 and all(b >= a for a, b in zip(calls, calls[1:]))
    assert curve.value[-1] == pytest.approx(result.metrics["distance"])
    # the first point is the start; a Gauss-Newton step on a linear problem lands on the solution at once:
    # the second point is the first trial point (5 + 1 + K calls: start, its Jacobian, the trial point)
    assert curve.value[0] == pytest.approx(float(np.linalg.norm(fit.x0 - fit.solution)))
    assert calls[1] == 5 + 1 + 3 + 1 and curve.value[1] < 1e-6


def test_least_squares_adds_the_prior_rows_without_solver_calls():
    a, b = _problem()
    prior = 2.0 * np.eye(3)
    fit = LinearFit(a, b, x0=np.zeros(3), prior=prior)
    result = run_least_squares(fit, {})
    np.testing.assert_allclose(result.phi, fit.solution, atol=1e-6)  # the penalised solution
    assert result.metrics["solver_calls"] == fit.calls


def test_least_squares_stops_at_the_budget_with_its_best_point():
    a, b = _problem(k=6, p=30)
    fit = LinearFit(a, b, x0=np.ones(6), budget=10)
    result = run_least_squares(fit, {})
    assert result.details["message"].startswith("stopped:")
    assert result.metrics["solver_calls"] <= 10 and fit.calls <= 10
    # start (1) + Jacobian (6) + the Gauss-Newton trial point (1, the solution of the linear problem) = 8 calls;
    # its Jacobian (6 more) exceeds 10: the result is that accepted point, on the curve at call 8
    np.testing.assert_allclose(result.phi, fit.solution, atol=1e-6)
    assert result.curve.cost["solver_calls"][-1] == 8


def test_nelder_mead_minimises_a_quadratic_within_its_tolerance():
    a, b = _problem(k=2, p=8)
    fit = LinearFit(a, b, x0=np.zeros(2))
    result = run_nelder_mead(fit, {"xatol": 1e-8, "fatol": 1e-12})
    # the simplex shrinks to xatol around the minimiser of ½‖Aφ − b‖² (well conditioned: cond(A) ≈ 2)
    assert result.metrics["distance"] < 1e-6
    assert result.metrics["solver_calls"] == fit.calls
    assert math.isclose(result.curve.value[-1], result.metrics["distance"])  # the curve ends at the result


def test_nelder_mead_initial_step_sets_the_simplex():
    a, b = _problem(k=2, p=8)
    fit = LinearFit(a, b, x0=np.zeros(2))
    run_nelder_mead(fit, {"initial_step": 0.5, "max_solver_calls": 3})  # the initial simplex only
    assert fit.calls == 3 and len(fit.seen) == 3
    np.testing.assert_allclose(np.sort(np.abs(np.array(fit.seen)).sum(axis=1)), [0.0, 0.5, 0.5])


def test_nelder_mead_respects_its_budget():
    a, b = _problem(k=5, p=20)
    fit = LinearFit(a, b, x0=np.zeros(5), budget=25)
    result = run_nelder_mead(fit, {"max_solver_calls": 25})
    assert result.details["message"].startswith("stopped:") and fit.calls <= 25
    assert result.curve.cost["solver_calls"][-1] <= 25
