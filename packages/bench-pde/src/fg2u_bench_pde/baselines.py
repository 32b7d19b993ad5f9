"""The classic methods a scientist would try first on a black-box solver, on the benchmark's own solver,
observations, noise, parametrisation and starting point (issue 25), as :class:`fg2u.experiment.Baseline`
methods of the benchmark:

* ``least_squares`` — :func:`scipy.optimize.least_squares` (trust-region reflective, ``method="trf"``) with a
  forward-difference Jacobian: K + 1 solver calls per iteration for K unknowns (the trial point, then K columns
  ``(r(φ + h_j e_j) − r(φ))/h_j``, with SciPy's ``"2-point"`` step ``h_j = √ε_mach · max(1, |φ_j|)`` or the
  config's ``fd_step``). The columns are evaluated as one batch (as parallel as the K + 1 solves allow).
* ``nelder_mead`` — :func:`scipy.optimize.minimize` with ``method="Nelder-Mead"`` (adaptive parameters of Gao
  & Han for more than 2 unknowns), one solver call per evaluation.

Every solver call is counted (the initial scan's included), with the rounds of solves two workers would need
(``rounds_2_workers``: the K Jacobian columns are one parallel batch, ⌈K/2⌉ rounds), against a budget (``max_solver_calls``, default the
config's ``baseline_max_solver_calls``). The anytime curve holds, after each iteration, the error of the current
iterate (for both methods the best point evaluated so far) at the solver calls and seconds at which that point
was evaluated — the cost at which a user could have stopped with it. The records carry the same metrics as
FG²U-ZO's (final error, steps / solver calls / seconds to 1 % and 0.1 %).

The trial supplies the black box through :class:`BlackBoxFit`.

References:
  Branch, Coleman & Li, "A subspace, interior, and conjugate gradient method for large-scale bound-constrained
  minimization problems", SIAM J. Sci. Comput. 21 (1999) 1–23 (TRF), https://doi.org/10.1137/S1064827595289108
  Gao & Han, "Implementing the Nelder-Mead simplex algorithm with adaptive parameters", Comput. Optim. Appl. 51
  (2012) 259–277, https://doi.org/10.1007/s10589-010-9329-3
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fg2u.experiment import Curve, Memory, MethodResult

__all__ = ["BlackBoxFit", "run_least_squares", "run_nelder_mead", "BudgetSpent", "WORKERS"]

#: The ``rounds_2_workers`` cost: calls that are independent (a Jacobian's K columns) run ⌈n/2⌉ rounds on two
#: workers; a sequential call (a trial point, a Nelder–Mead vertex) is one round.
WORKERS = 2


class BudgetSpent(Exception):
    """The method asked for more solver calls than its budget."""


class BlackBoxFit(abc.ABC):
    """What a trial offers a classic method: the black box as residuals, the start, the evaluation.

    The objective is ``½ ‖r(φ)‖² + ½ ‖R φ‖²`` with ``r`` the residuals of :meth:`residual_function` (one solver
    call per φ) and ``R`` the optional :attr:`prior_root` (known exactly, no solver call).
    """

    #: calls spent by :meth:`fit_start` (an initial scan) and its seconds (compilation excluded)
    scan_calls: int = 0
    scan_seconds: float = 0.0
    #: ``R`` (K, K) of a Gaussian prior ½‖Rφ‖², or None
    prior_root: np.ndarray | None = None
    #: absolute finite-difference step of the Jacobian columns, or None for SciPy's "2-point" rule
    fd_step: float | None = None
    #: the default budget of solver calls (the initial scan's included)
    baseline_budget: int = 1000
    curve_metric: str | None = None

    @abc.abstractmethod
    def fit_start(self) -> np.ndarray:
        """φ₀ as a flat float64 vector (the same start as the estimators'; may run the initial scan)."""

    @abc.abstractmethod
    def residual_function(
        self, batch_sizes: tuple[int, ...]
    ) -> tuple[Callable[[np.ndarray], np.ndarray], float, int | None]:
        """``(residuals, compile_seconds, temp_bytes)``: ``residuals(φs (n, K)) -> (n, R)`` for each ``n`` of
        ``batch_sizes`` (compiled ahead), one solver call per row; NaN rows where φ is outside the domain."""

    @abc.abstractmethod
    def curve_value(self, phi: np.ndarray) -> float:
        """The anytime metric of a flat φ (cheap: no solve)."""

    @abc.abstractmethod
    def final_metrics(self, phi: np.ndarray) -> dict[str, float]:
        """The headline metrics of the final flat φ (as the estimators' records)."""

    def stop_when(self, step: int, phi: Any) -> bool:
        """Ends the fit early (``stop_below`` cost runs)."""
        return False

    def curve_metrics(self, curve: Curve) -> dict[str, float]:
        """Metrics read off the anytime curve (costs to reach the targets)."""
        return {}

    def details(self) -> dict[str, Any]:
        return {}


class _Tracker:
    """Counts solver calls, enforces the budget and records the anytime curve of a SciPy method."""

    def __init__(
        self,
        fit: BlackBoxFit,
        residuals: Callable,
        budget: int,
        compile_s: float,
        x0: np.ndarray,
        fd_step: float | None = None,
    ) -> None:
        self.fit, self.residuals, self.budget, self.compile_s = fit, residuals, budget, compile_s
        self.fd_step = fd_step
        self.calls = fit.scan_calls
        self.rounds = math.ceil(fit.scan_calls / WORKERS)  # rounds of solves with 2 workers (module docstring)
        self.evaluated_rounds: dict[bytes, int] = {}
        self.rounds_cost = [float(self.rounds)]
        self.t0 = time.perf_counter()
        self.evaluated: dict[bytes, tuple[int, float]] = {}
        self.iterate = np.array(x0, dtype=np.float64)
        self.steps, self.seconds, self.values, self.cost = [0], [compile_s], [fit.curve_value(x0)], [float(self.calls)]
        self.prior = fit.prior_root
        self.last: tuple[bytes, np.ndarray] | None = None
        self.best = (math.inf, self.iterate)  # the lowest objective among the evaluated candidate points

    def spend(self, n: int) -> None:
        """n independent solver calls (one round of ⌈n/2⌉ on two workers)."""
        if self.calls + n > self.budget:
            raise BudgetSpent(f"{self.calls} solver calls spent, {n} more asked, budget {self.budget}")
        self.calls += n
        self.rounds += math.ceil(n / WORKERS)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def with_prior(self, r: np.ndarray, x: np.ndarray) -> np.ndarray:
        return r if self.prior is None else np.concatenate([r, self.prior @ x])

    def residual(self, x: np.ndarray) -> np.ndarray:
        """One solver call at x (a candidate iterate); its residuals are kept for a Jacobian at x."""
        x = np.asarray(x, dtype=np.float64)
        self.spend(1)
        r = self.residuals(x[None])[0]
        self.evaluated[x.tobytes()] = (self.calls, self.elapsed())
        self.evaluated_rounds[x.tobytes()] = self.rounds
        self.last = (x.tobytes(), r)
        full = self.with_prior(r, x)
        value = 0.5 * float(np.dot(full, full))
        if math.isfinite(value) and value < self.best[0]:
            self.best = (value, x)
        return full

    def stop(self, error: BudgetSpent) -> tuple[np.ndarray, str]:
        """The result when the budget ran out: the best point evaluated (TRF's and Nelder–Mead's iterate, even
        when SciPy had not reported it yet)."""
        x = self.best[1]
        if not np.array_equal(x, self.iterate):
            try:
                self.iteration(x)
            except StopIteration:
                pass
        return x, f"stopped: {error}"

    def objective(self, x: np.ndarray) -> float:
        r = self.residual(x)
        value = 0.5 * float(np.dot(r, r))
        return value if math.isfinite(value) else math.inf

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Forward differences of the residuals at x, K solver calls in one batch; ``r(x)`` is the last
        evaluation's (SciPy asks for the Jacobian only at the point it has just evaluated and accepted)."""
        x = np.asarray(x, dtype=np.float64)
        if self.last is None or self.last[0] != x.tobytes():
            raise RuntimeError("least_squares asked for a Jacobian at a point it did not evaluate last")
        f0 = self.last[1]
        if self.fd_step is None:  # SciPy's "2-point" rule
            h = np.sqrt(np.finfo(np.float64).eps) * np.where(x >= 0, 1.0, -1.0) * np.maximum(1.0, np.abs(x))
        else:
            h = np.full_like(x, self.fd_step)
        h = (x + h) - x  # exactly representable steps
        self.spend(x.size)
        columns = self.residuals(x[None, :] + np.diag(h))  # (K, P): one solver call per column
        jac = ((columns - f0[None, :]) / h[:, None]).T
        return jac if self.prior is None else np.vstack([jac, self.prior])

    def iteration(self, x: np.ndarray) -> None:
        """A SciPy callback after each iteration: x is the current iterate."""
        x = np.array(x, dtype=np.float64)
        calls, seconds = self.evaluated.get(x.tobytes(), (self.calls, self.elapsed()))
        self.iterate = x
        step = len(self.steps)
        self.steps.append(step)
        self.cost.append(float(calls))
        self.rounds_cost.append(float(self.evaluated_rounds.get(x.tobytes(), self.rounds)))
        self.seconds.append(self.compile_s + seconds)
        self.values.append(self.fit.curve_value(x))
        if self.fit.stop_when(step, x):
            raise StopIteration

    def curve(self) -> Curve | None:
        if self.fit.curve_metric is None:
            return None
        # the seconds of a point evaluated before a later one may not be smaller; keep the time axis monotone
        seconds = list(np.maximum.accumulate(np.asarray(self.seconds)))
        return Curve(
            self.fit.curve_metric,
            tuple(self.steps),
            tuple(seconds),
            tuple(self.values),
            {
                "solver_calls": tuple(np.maximum.accumulate(np.asarray(self.cost))),
                "rounds_2_workers": tuple(np.maximum.accumulate(np.asarray(self.rounds_cost))),
            },
        )


def _budget(fit: BlackBoxFit, settings: Mapping[str, Any]) -> int:
    budget = settings.get("max_solver_calls")
    return int(fit.baseline_budget if budget is None else budget)


def _result(
    fit: BlackBoxFit, tracker: _Tracker, x: np.ndarray, iterations: int, message: str, memory: Memory | None
) -> MethodResult:
    metrics = dict(fit.final_metrics(x))
    curve = tracker.curve()
    if curve is not None:
        metrics.update(fit.curve_metrics(curve))
    metrics.update(
        solver_calls=float(tracker.calls),
        iterations=float(iterations),
        fit_time_s=tracker.elapsed(),
        compile_time_s=tracker.compile_s,
        scan_seconds=fit.scan_seconds,
    )
    details = {**fit.details(), "message": message, "solver_call_budget": tracker.budget}
    return MethodResult(metrics=metrics, curve=curve, memory=memory, details=details, phi=x)


def run_least_squares(fit: BlackBoxFit, settings: Mapping[str, Any]) -> MethodResult:
    """``scipy.optimize.least_squares`` (module docstring); settings: ``method`` (``"trf"``), ``max_solver_calls``,
    ``ftol``/``xtol``/``gtol`` (SciPy's defaults 1e-8), ``diff_step`` (an absolute Jacobian step; default the
    trial's ``fd_step``, else SciPy's "2-point" rule)."""
    from scipy.optimize import least_squares  # noqa: PLC0415 (SciPy loads only for the classic baselines)

    x0 = fit.fit_start()
    k = x0.size
    residuals, compile_s, temp = fit.residual_function((1, k))
    step = settings.get("diff_step")
    tracker = _Tracker(
        fit, residuals, _budget(fit, settings), compile_s, x0, fit.fd_step if step is None else float(step)
    )
    message, iterations = "", 0
    try:
        out = least_squares(
            tracker.residual,
            x0,
            jac=tracker.jacobian,
            method=str(settings.get("method", "trf")),
            ftol=float(settings.get("ftol", 1e-8)),
            xtol=float(settings.get("xtol", 1e-8)),
            gtol=float(settings.get("gtol", 1e-8)),
            callback=tracker.iteration,
        )
        x, message, iterations = np.asarray(out.x, dtype=np.float64), str(out.message), int(out.njev)
        if not np.array_equal(x, tracker.iterate):  # SciPy's final x (always an evaluated, accepted point)
            tracker.iteration(x)
    except BudgetSpent as error:
        (x, message), iterations = tracker.stop(error), len(tracker.steps) - 1
    memory = None if temp is None else Memory("xla_temp_bytes", int(temp))
    return _result(fit, tracker, x, iterations, message, memory)


def run_nelder_mead(fit: BlackBoxFit, settings: Mapping[str, Any]) -> MethodResult:
    """``scipy.optimize.minimize(method="Nelder-Mead")`` on ``½‖r‖² (+ prior)``; settings: ``max_solver_calls``,
    ``xatol``/``fatol`` (SciPy's 1e-4), ``adaptive`` (``"auto"``: for more than 2 unknowns), ``initial_step`` (the
    initial simplex's edge along each axis; default SciPy's: 5 % of each coordinate, 0.00025 for a zero one)."""
    from scipy.optimize import minimize  # noqa: PLC0415

    x0 = fit.fit_start()
    residuals, compile_s, temp = fit.residual_function((1,))
    tracker = _Tracker(fit, residuals, _budget(fit, settings), compile_s, x0)
    adaptive = settings.get("adaptive", "auto")
    adaptive = x0.size > 2 if adaptive == "auto" else bool(adaptive)
    step = settings.get("initial_step")
    simplex = None if step is None else np.vstack([x0, x0[None, :] + float(step) * np.eye(x0.size)])
    message, iterations = "", 0
    try:
        out = minimize(
            tracker.objective,
            x0,
            method="Nelder-Mead",
            callback=tracker.iteration,
            options={
                "maxfev": 10**9,  # the tracker's budget counts every call
                "maxiter": 10**9,
                "xatol": float(settings.get("xatol", 1e-4)),
                "fatol": float(settings.get("fatol", 1e-4)),
                "adaptive": adaptive,
                "initial_simplex": simplex,
            },
        )
        x, message, iterations = np.asarray(out.x, dtype=np.float64), str(out.message), int(out.nit)
        if not np.array_equal(x, tracker.iterate):
            tracker.iteration(x)
    except BudgetSpent as error:
        (x, message), iterations = tracker.stop(error), len(tracker.steps) - 1
    memory = None if temp is None else Memory("xla_temp_bytes", int(temp))
    return _result(fit, tracker, x, iterations, message, memory)
