"""PDE coefficient discovery on the core's runner: the problem, data, evaluation and configs — nothing else.

``python -m fg2u_bench_pde --config smoke|cpu|paper --setting paper|raissi|field --estimators SPEC ...``: for every
(equation, seed, method), fit the unknown coefficient(s) to seeded observations of the solution and append a
record to ``<out>/<config>.jsonl`` (:mod:`fg2u.experiment.runner` runs the loop through
:class:`fg2u.jax.harness.Driver`, which compiles the meta step ahead and records XLA's memory of it, and writes the
records with the anytime curve of the coefficient error against meta steps, seconds and solver calls).

Problems (``--solver``):

* ``spectral`` (default) — the pseudo-spectral ETDRK4 solver (:mod:`.spectral`). A zeroth-order estimator
  (``fg2u_zo``, the paper's quadrature) sees it as a black box (:func:`.problems.spectral_problem`: only L(φ));
  every other registered estimator (``fg2u``, ``rgu``, ``rgu_checkpointed``, ...) differentiates through the
  same solve written as an unrolled problem (:func:`.problems.spectral_unrolled_problem`): same L(φ).
* ``pinn`` — the paper's PINN inner problem (:mod:`.pinn`), an unrolled problem for every estimator.

Methods: any registered estimator by spec, the config filling what a spec leaves out (:meth:`PDE.presets`:
``fg2u_zo`` gets the config's b, ε and distribution), and the benchmark's own (:mod:`.baselines`,
:meth:`PDE.baselines`): ``least_squares`` and ``nelder_mead`` (SciPy on the same black box, every solver call
counted), ``zo_quadrature`` (the paper's fixed 12-point quadrature), and two yardsticks: ``noise_floor`` (the
Cramér–Rao floor of noisy data) and ``map_fit`` (the field setting's converged penalised least-squares fit
with its posterior spread).

Cost of discovery: every spectral record holds, for 1 % and 0.1 % relative coefficient error (the largest over
the unknowns), ``steps_to_*``, ``solver_calls_to_*`` (initial-scan solves included) and ``seconds_to_*`` (scan
+ loop, compilation excluded; NaN when never reached), read off the anytime curve (the error after every meta
step: cheap, it needs no solve). Field records hold the same to within 10 % of the MAP fit's error
(``*_to_map``).

Seeds: observation points and noise, the initial coefficient and the directions derive from the seed; every
method of a seed sees the same observations and starts from the same point.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fg2u.estimators as registry
import fg2u.jax as fj
from fg2u.experiment import (
    Baseline,
    Curve,
    Diverged,
    Experiment,
    MethodResult,
    ResultRecord,
    Spec,
    SpecError,
    Task,
    Trial,
    UsageError,
    main,
    parse,
)
from fg2u.experiment.runner import Method, run_method
from fg2u.jax import harness
from fg2u.jax.harness import compile_ahead
from fg2u_bench_pde.baselines import BlackBoxFit, run_least_squares, run_nelder_mead
from fg2u_bench_pde.configs import CONFIGS, FIELD_EQUATION, SETTINGS, BenchConfig, apply_setting, default_grid
from fg2u_bench_pde.equations import (
    EQUATIONS,
    PAPER_EQUATIONS,
    UnstableSettingError,
    coefficient_from_phi,
    get_equation,
    phi_from_coefficient,
)
from fg2u_bench_pde.field import (
    FieldSpec,
    field_black_box,
    field_objective_parts,
    field_reference,
    field_unrolled_problem,
    hat_basis,
    prior_gradient,
    prior_precision,
    relative_field_error,
    true_log_rate,
)
from fg2u_bench_pde.information import noise_floor, posterior_covariance
from fg2u_bench_pde.observations import Observations, sample_observations
from fg2u_bench_pde.pinn import pinn_prediction, pinn_problem
from fg2u_bench_pde.problems import (
    observation_data,
    spectral_prediction,
    spectral_problem,
    spectral_residuals,
    spectral_unrolled_problem,
)
from fg2u_bench_pde.quadrature import FixedQuadratureZO
from fg2u_bench_pde.reference import (
    CACHE_ENV_VAR,
    ENV_VAR,
    SOLVER_VERSION,
    MissingDataError,
    load_reference,
    resolve_cache_dir,
    solver_reference,
)
from fg2u_bench_pde.spectral import SpectralSettings, check_solution, grid_points

__all__ = ["PDE", "EXPERIMENT", "PdeConfig", "GroundTruth", "SpectralTrial", "FieldTrial", "PinnTrial", "cli"]

SOLVERS = ("spectral", "pinn")
DATA_SOURCES = ("solver", "reference")
# Index of each equation in the seed of its initial coefficient (fixed, so adding equations changes nothing).
_SEED_INDEX = {"allen_cahn": 0, "burgers": 1, "kdv": 2, "allen_cahn_periodic": 3}
_CURVE_POINTS_MAX = 1000  # the anytime curve holds every meta step up to this many
PARALLEL_WORKERS = 2  # the rounds_2_workers cost: independent solves spread over two processes


# ---------------------------------------------------------------------------------------------- data
@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """One equation's data: the solution grid, the ground truth on it, and the target coefficient(s)."""

    equation: str
    x: np.ndarray  # (n_x,)
    t: np.ndarray  # (n_t,)
    u: np.ndarray  # (n_t, n_x)
    target_coefficient: float
    data_source: str
    spectral: SpectralSettings
    reference_path: str = ""
    target_nonlinear: float = 1.0  # λ₁ of the two-unknown setting


def build_ground_truth(
    config: BenchConfig, equation: str, data_source: str = "solver", data_dir=None, cache_dir=None
) -> GroundTruth:
    """The ground truth of ``equation`` on its grid (cut as the config says).

    ``data_source="solver"``: our solver at the true coefficient on the config's finer ``reference``
    discretisation, cached (:func:`.reference.solver_reference`); ``"reference"``: the authors' ``.mat`` file
    from ``data_dir`` or ``$FG2U_PDE_DATA``. The field setting's truth is its solver at the true field on a finer
    grid (:func:`.field.field_reference`, seconds, not cached).
    """
    if equation not in config.spectral:
        raise ValueError(f"config {config.name!r} has no settings for equation {equation!r}")
    sc = config.spectral[equation]
    if equation == FIELD_EQUATION:
        x, t = default_grid(equation)
        n_t = max(2, int(round(len(t) * sc.time_fraction)))
        t, x = t[:n_t], x[:: sc.x_stride]
        settings = SpectralSettings(sc.num_points, float(t[1] - t[0]), n_t, sc.substeps)
        fine = config.reference.get(equation, sc)
        u = field_reference(x, t, SpectralSettings(fine.num_points, float(t[1] - t[0]), n_t, fine.substeps))
        return GroundTruth(equation, x, t, u, math.nan, "solver", settings, "generated")
    eq = get_equation(equation)
    if data_source == "reference":
        if eq.reference_file is None:
            raise ValueError(f"{equation} has no reference file; use --data-source solver")
        ref = load_reference(equation, data_dir)
        x, t, u, target = ref.x, ref.t, ref.u, eq.reference_coefficient
    else:
        x, t = default_grid(equation)
        u, target = None, eq.true_coefficient
    n_t = max(2, int(round(len(t) * sc.time_fraction)))
    t = t[:n_t]
    keep = np.arange(0, len(x), sc.x_stride)
    x = x[keep]
    settings = SpectralSettings(sc.num_points, float(t[1] - t[0]), n_t, sc.substeps)
    if u is None:
        fine = config.reference.get(equation, sc)
        fine_settings = SpectralSettings(fine.num_points, float(t[1] - t[0]), n_t, fine.substeps)
        ref = solver_reference(equation, x, t, fine_settings, cache_dir)
        u = ref.u
    else:
        u = u[:n_t][:, keep]
    return GroundTruth(
        equation, np.asarray(x), np.asarray(t), np.asarray(u), float(target), data_source, settings, ref.path
    )


def draw_observations(config: BenchConfig, truth: GroundTruth, seed: int) -> Observations:
    """The seeded observations of one run: the config's number, layout and noise level on ``truth``'s grid."""
    return sample_observations(
        truth.x,
        truth.t,
        truth.u,
        num_points=config.num_observations,
        noise_level=config.noise_level,
        seed=seed,
        layout=config.observation_layout,
    )


def initial_coefficient(config: BenchConfig, equation: str, seed: int) -> float:
    """c₀ from φ_paper ~ U[hi·floor, hi] in the paper's parametrisation (see :mod:`.configs`)."""
    eq = get_equation(equation)
    hi = eq.paper_init_range[1]
    rng = np.random.default_rng([seed, _SEED_INDEX[equation], 7])
    phi_paper = rng.uniform(hi * config.init_floor_fraction, hi)
    return float(coefficient_from_phi(phi_paper, eq.paper_parametrisation))


def initial_nonlinear(equation: str, seed: int) -> float:
    """λ₁ start of the two-unknown setting: log-uniform in [0.5, 2] (true λ₁ = 1), seeded."""
    rng = np.random.default_rng([seed, _SEED_INDEX[equation], 11])
    return float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))


# --------------------------------------------------------------------------------------------- config
@dataclasses.dataclass(frozen=True)
class PdeConfig:
    """A :class:`~fg2u_bench_pde.configs.BenchConfig` with the run's equations, data and solver."""

    config: BenchConfig
    equations: tuple[str, ...]
    data_source: str
    data_dir: str | None
    cache_dir: str | None
    solver: str
    field: FieldSpec | None = None

    @property
    def name(self) -> str:
        return self.config.name if self.field is None else f"{self.config.name}-field"

    def settings(self) -> dict[str, Any]:
        """The settings of the method's budget and protocol (the problem's are the tasks')."""
        c = self.config
        outer = c.pinn_outer if self.solver == "pinn" else c.outer
        settings = {
            "outer_optimizer": "adam",
            "outer_lr": {e: outer.lr[e] for e in self.equations},
            "adam_b1": outer.b1,
            "adam_b2": outer.b2,
            "outer_steps": {e: outer.steps_for(e) for e in self.equations},
            "final_lr_fraction": outer.final_lr_fraction,
            "parametrisation": c.parametrisation if self.field is None else "log-rate field",
            "init_scan": c.init_scan if self.solver == "spectral" else 0,
            "deviation": _deviation(c, self.solver),
            "stop_below": c.stop_below,
            "baseline_max_solver_calls": c.baseline_max_solver_calls,
            "dtype": "float64",
        }
        if self.field is not None:
            settings["fd_step"] = _field_fd_step(self)
        return settings


def _deviation(config: BenchConfig, solver: str) -> str:
    if solver == "spectral" and config.init_scan > 0:
        return (
            f"init_scan: the descent starts from the best of the random draw and {config.init_scan} "
            "log-spaced coefficients (not in the paper's purely local protocol)"
        )
    return "none"


def _field_fd_step(pc: PdeConfig) -> float | None:
    """Least squares' Jacobian step for the noisy field solver: the config's ``fd_step``, 0.1 when unset (the
    solver noise divided by the step must stay below the signal; 0.1 beat 0.3 on K = 16, seed 0: 7.6 % against
    10.7 % field error); None (SciPy's rule) for the deterministic solver."""
    if pc.field is None or pc.field.solver_noise == 0:
        return None
    return 0.1 if pc.config.fd_step is None else pc.config.fd_step


#: FG²U-ZO's defaults for the noisy field solver: central differences (no O(ε) bias, so a step large enough
#: for the noise, ε = 0.05) with b = 8 (16 calls per step, as the deterministic b = 16 forward step's 17).
#: Chosen on K = 16, seed 0, 1 % solver noise, 1,000 steps: forward b = 16 with ε = 0.1 / 0.02 ended at
#: 6.1 % / 4.8 % field error, central b = 8 with ε = 0.05 at 1.55 % (the MAP fit: 1.62 %).
NOISY_ZO = {"scheme": "central", "num_directions": 8, "eps": 0.05}


# ---------------------------------------------------------------------------------------------- costs
def _zeroth_order(estimator: Any) -> bool:
    """Estimators that only evaluate L(φ): they see the black-box solver."""
    return isinstance(estimator, (registry.FG2U_ZO, FixedQuadratureZO))


def step_costs(estimator: Any, unknowns: int) -> dict[str, float]:
    """Costs of one meta step. Black box: ``solver_calls``, evaluations of the solver (FG²U-ZO forward b + 1,
    central 2b; the quadrature 12·d + 1), and ``rounds_2_workers``, the rounds of solves two workers need when the
    step's independent solves are spread over them (⌈calls/2⌉). White box: ``solver_calls`` counts forward passes
    through the solver (RGUCheckpointed recomputes the forward pass once) and ``derivative_passes`` its reverse or
    tangent passes (RGU, TRGU: one reverse pass; FG²U: b tangents). Other estimators: none recorded."""
    if isinstance(estimator, FixedQuadratureZO):
        calls = estimator.solves_per_step(unknowns)
        return {"solver_calls": float(calls), "rounds_2_workers": float(math.ceil(calls / PARALLEL_WORKERS))}
    if isinstance(estimator, registry.FG2U_ZO):
        b = estimator.num_directions
        calls = b + 1 if estimator.scheme == "forward" else 2 * b
        return {"solver_calls": float(calls), "rounds_2_workers": float(math.ceil(calls / PARALLEL_WORKERS))}
    if isinstance(estimator, registry.RGUCheckpointed):
        return {"solver_calls": 2.0, "derivative_passes": 1.0}
    if isinstance(estimator, (registry.RGU, registry.TRGU)):
        return {"solver_calls": 1.0, "derivative_passes": 1.0}
    if isinstance(estimator, registry.FG2U):
        return {"solver_calls": 1.0, "derivative_passes": float(estimator.num_directions)}
    return {}


def costs_to_reach(curve: Curve, targets: Mapping[str, float], offset_s: float) -> dict[str, float]:
    """``steps_to_<label>``, ``solver_calls_to_<label>`` and ``seconds_to_<label>`` for each ``label: τ`` of
    ``targets`` (and ``rounds_2_workers_to_<label>`` when the curve has that cost): the first curve point whose
    value is below τ (NaN when none is). Seconds are ``offset_s`` (an initial scan) plus the loop's seconds since
    the curve's first point (compilation excluded).

    Examples:
        >>> curve = Curve("error", (0, 1, 2), (5.0, 5.5, 6.0), (0.3, 0.02, 0.005), {"solver_calls": (33.0, 35.0, 37.0)})
        >>> costs_to_reach(curve, {"1pct": 0.01}, offset_s=0.25)
        {'steps_to_1pct': 2.0, 'solver_calls_to_1pct': 37.0, 'seconds_to_1pct': 1.25}
    """
    out: dict[str, float] = {}
    costs = {name: curve.cost.get(name) for name in ("solver_calls", "rounds_2_workers")}
    for label, tau in targets.items():
        index = next((i for i, v in enumerate(curve.value) if math.isfinite(v) and v < tau), None)
        out[f"steps_to_{label}"] = math.nan if index is None else float(curve.step[index])
        for name, column in costs.items():
            if name == "solver_calls" or column is not None:
                value = math.nan if index is None or column is None else float(column[index])
                out[f"{name}_to_{label}"] = value
        out[f"seconds_to_{label}"] = math.nan if index is None else offset_s + curve.seconds[index] - curve.seconds[0]
    return out


def _adam(outer, equation: str) -> optax.GradientTransformation:
    lr = outer.lr[equation]
    steps = outer.steps_for(equation)
    schedule = (
        optax.constant_schedule(lr)
        if outer.final_lr_fraction >= 1.0
        else optax.cosine_decay_schedule(lr, steps, alpha=outer.final_lr_fraction)
    )
    return optax.adam(schedule, b1=outer.b1, b2=outer.b2)


def _batched(problem: Any) -> Any:
    """The problem's data with a leading axis of one estimate (the runner's inputs)."""
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], problem)


# --------------------------------------------------------------------------------------------- trials
class _CoefficientTrial(Trial, BlackBoxFit):
    """What the spectral and field trials share: the problem forms, costs, anytime curve and its metrics."""

    log_every = 1

    def __init__(self, pc: PdeConfig, truth: GroundTruth, seed: int, num_meta_steps: int, unknowns: int) -> None:
        self.pc, self.config, self.truth, self.seed = pc, pc.config, truth, seed
        self.num_meta_steps = num_meta_steps
        self.curve_points = min(num_meta_steps, _CURVE_POINTS_MAX) + 1
        self.unknowns = unknowns
        self.key = jax.random.PRNGKey(seed)
        self.black_box_only = True
        self._phi0: Any = None
        self.baseline_budget = self.config.baseline_max_solver_calls

    def use_estimator(self, estimator: Any) -> None:
        self.black_box_only = _zeroth_order(estimator)

    def inputs_for(self, estimator: Any, step: int, inputs: Any) -> Any:
        if _zeroth_order(estimator) == self.black_box_only:
            return inputs
        chosen = self.black_box_only
        self.use_estimator(estimator)
        try:
            return self.next_inputs(step)[1]  # a pure function of the step: the same draw in the other form
        finally:
            self.black_box_only = chosen

    def step_costs(self, estimator: Any) -> dict[str, float]:
        return step_costs(estimator, self.unknowns)

    def initial_costs(self) -> dict[str, float]:
        rounds = float(math.ceil(self.scan_calls / PARALLEL_WORKERS))
        return {"solver_calls": float(self.scan_calls), "derivative_passes": 0.0, "rounds_2_workers": rounds}

    def make_problem(self, inputs: Any) -> Any:
        return inputs  # the problem pytree itself (its data are the traced leaves)

    def fit_start(self) -> np.ndarray:
        return np.ravel(np.asarray(self.initial_phi(), dtype=np.float64))

    def _compile_residuals(self, residuals, data, shape: tuple[int, ...], batch_sizes: tuple[int, ...]):
        """``fn(φs (n, d)) -> (n, R)`` numpy, compiled ahead for each ``n``; with the compile seconds and the
        largest batch's XLA temp bytes."""
        batched = jax.jit(jax.vmap(lambda p, d: residuals(p.reshape(shape), d), in_axes=(0, None)))
        compiled, seconds, temp = {}, 0.0, None
        for n in sorted(set(batch_sizes)):
            example = jnp.zeros((n, int(np.prod(shape, dtype=int))), jnp.float64)
            compiled[n], temp, s = compile_ahead(batched, example, data())
            seconds += s

        def fn(phis: np.ndarray) -> np.ndarray:
            phis = jnp.asarray(phis, jnp.float64)
            return np.asarray(compiled[phis.shape[0]](phis, data()))

        return fn, seconds, temp


class SpectralTrial(_CoefficientTrial):
    """One (equation, seed) of the paper / raissi settings on the spectral solver (module docstring).

    Seeds: observations from ``seed``; the initial coefficient from ``(seed, equation)``; the meta step ``i``'s
    directions from ``fold_in(PRNGKey(seed), i)`` (as the records before the runner: same numbers)."""

    curve_metric = "relative_coefficient_error"

    def __init__(self, pc: PdeConfig, truth: GroundTruth, seed: int) -> None:
        c = pc.config
        eq = get_equation(truth.equation)
        super().__init__(pc, truth, seed, c.outer.steps_for(truth.equation), c.unknowns)
        self.eq = eq
        self.param = c.parametrisation_for(truth.equation)
        self.observations = draw_observations(c, truth, seed)
        self.black_box = spectral_problem(eq, truth.spectral, self.param, self.observations, c.unknowns)
        self.targets = np.array(
            [truth.target_nonlinear, truth.target_coefficient] if c.unknowns == 2 else [truth.target_coefficient]
        )
        self.c_drawn = initial_coefficient(c, truth.equation, seed)
        self.lam0 = initial_nonlinear(truth.equation, seed) if c.unknowns == 2 else 1.0
        self.c0 = self.c_drawn
        self._inputs: dict[bool, Any] = {}

    # -- the start (with the initial scan)
    def to_phi(self, c: float) -> jax.Array:
        if self.unknowns == 2:
            values = [phi_from_coefficient(self.lam0, self.param), phi_from_coefficient(c, self.param)]
            return jnp.asarray(values, dtype=jnp.float64)
        return jnp.asarray(phi_from_coefficient(c, self.param), dtype=jnp.float64)

    def coefficients(self, phi: Any) -> np.ndarray:
        """``(λ₁, c)`` or ``(c,)``."""
        return np.atleast_1d(np.asarray(coefficient_from_phi(jnp.asarray(phi), self.param), dtype=np.float64))

    def initial_phi(self) -> Any:
        if self._phi0 is None:
            if self.config.init_scan > 0:
                self.c0 = self._scan()
            self._phi0 = self.to_phi(self.c0)
        return self._phi0

    def _scan(self) -> float:
        """The best of the drawn coefficient and ``init_scan`` log-spaced ones over the paper's initial range
        (λ₁ at its start value); ``init_scan + 1`` solver calls."""
        hi = self.eq.paper_init_range[1]
        lo_c, hi_c = (
            float(coefficient_from_phi(v, self.eq.paper_parametrisation))
            for v in (hi * self.config.init_floor_fraction, hi)
        )
        candidates = np.concatenate([[self.c_drawn], np.geomspace(lo_c, hi_c, self.config.init_scan)])
        phis = jnp.stack([self.to_phi(c) for c in candidates])
        problem = self.black_box
        mapped = jax.jit(lambda ps, data: jax.lax.map(lambda p: problem.objective(p, data), ps))
        compiled, _, _ = compile_ahead(mapped, phis, problem.data)
        tic = time.perf_counter()
        losses = np.asarray(compiled(phis, problem.data))
        self.scan_seconds = time.perf_counter() - tic
        self.scan_calls = len(candidates)
        losses = np.where(np.isfinite(losses), losses, np.inf)
        if not np.any(np.isfinite(losses)):
            raise UnstableSettingError(
                f"{self.eq.name}: every initial-scan solve was NaN/inf (coefficients {lo_c:.3g}…{hi_c:.3g}); "
                "check the spectral settings"
            )
        return float(candidates[int(np.argmin(losses))])

    # -- the meta loop
    def meta_optimizer(self) -> Any:
        return _adam(self.config.outer, self.truth.equation)

    @functools.cached_property
    def unrolled(self) -> Any:
        return spectral_unrolled_problem(self.eq, self.truth.spectral, self.param, self.observations, self.unknowns)

    def next_inputs(self, step: int) -> tuple[Any, Any]:
        form = self.black_box_only
        if form not in self._inputs:
            self._inputs[form] = _batched(self.black_box if form else self.unrolled)
        return jax.random.fold_in(self.key, step), self._inputs[form]

    def relative_errors(self, phi: Any) -> np.ndarray:
        return np.abs(self.coefficients(phi) - self.targets) / self.targets

    def curve_value(self, phi: Any) -> float:
        return float(np.max(self.relative_errors(np.reshape(phi, np.shape(self.initial_phi())))))

    def evaluate(self, phi: Any, *, final: bool) -> dict[str, float]:
        if not final:
            return {"relative_coefficient_error": self.curve_value(phi)}
        return self.final_metrics(phi)

    def final_metrics(self, phi: Any) -> dict[str, float]:
        phi = jnp.reshape(jnp.asarray(phi, jnp.float64), jnp.shape(self.initial_phi()))
        c = self.coefficients(phi)
        eq, spectral = self.eq, self.truth.spectral
        if not (np.all(np.isfinite(c)) and np.all(c > 0)):
            raise Diverged(
                f"{eq.name}: the fitted coefficient(s) {c.tolist()} left (0, ∞) (parametrisation {self.param}); use "
                "the 'log' parametrisation or a smaller outer learning rate",
                self.num_meta_steps,
            )
        coefficient, scale = float(c[-1]), float(c[0]) if self.unknowns == 2 else 1.0
        objective = jax.jit(self.black_box.objective)
        target_phi = jnp.asarray([phi_from_coefficient(float(v), self.param) for v in self.targets])
        prediction = np.asarray(spectral_prediction(eq, coefficient, spectral, self.truth.x, scale))
        try:
            check_solution(prediction, eq, coefficient, spectral)
        except UnstableSettingError as error:
            raise Diverged(str(error), self.num_meta_steps) from None
        rel = self.relative_errors(phi)
        metrics = {
            "relative_coefficient_error": float(np.max(rel)),
            "relative_l2_error": float(np.linalg.norm(prediction - self.truth.u) / np.linalg.norm(self.truth.u)),
            "final_misfit": float(objective(phi, self.black_box.data)),
            # the misfit of the true coefficients on the same (noisy) observations: an estimate that fits better
            # than the truth has an error set by the data (estimation), not by the optimiser
            "outer_loss_at_target": float(objective(target_phi.reshape(phi.shape), self.black_box.data)),
            "coefficient": coefficient,
            "initial_coefficient": self.c0,
            "drawn_initial_coefficient": self.c_drawn,
            "target_coefficient": self.truth.target_coefficient,
            "scan_seconds": self.scan_seconds,
            "scan_solver_calls": float(self.scan_calls),
        }
        if self.unknowns == 2:
            metrics.update(
                lambda1=scale,
                lambda1_relative_error=float(rel[0]),
                lambda2_relative_error=float(rel[1]),
                initial_lambda1=self.lam0,
            )
        return metrics

    def stop_when(self, step: int, phi: Any) -> bool:
        stop = self.config.stop_below
        return stop is not None and self.curve_value(phi) < stop

    def curve_metrics(self, curve: Curve) -> dict[str, float]:
        targets = {f"{100 * tau:g}pct": tau for tau in self.config.cost_thresholds}
        return costs_to_reach(curve, targets, self.scan_seconds)

    # -- the black box for the classic methods
    def residual_function(self, batch_sizes: tuple[int, ...]):
        residuals = spectral_residuals(self.eq, self.truth.spectral, self.param, self.unknowns)
        data = self.black_box.data
        return self._compile_residuals(residuals, lambda: data, np.shape(self.initial_phi()), batch_sizes)

    def details(self) -> dict[str, Any]:
        return {"problem_form": "black box" if self.black_box_only else "unrolled (differentiable solver)"}


class FieldTrial(_CoefficientTrial):
    """One (K, seed) of the field setting (:mod:`.field`): θ₀ = 0 (the prior mean, r = 5) for every seed;
    observations and noise from ``seed``, the noisy solver's call noise from ``(seed, 1)``."""

    curve_metric = "relative_field_error"
    target_factor = 1.1  # "reached": within 10 % of the MAP fit's error

    def __init__(self, experiment: PDE, pc: PdeConfig, truth: GroundTruth, seed: int) -> None:
        c, spec = pc.config, pc.field
        assert spec is not None
        super().__init__(pc, truth, seed, c.outer.steps_for(truth.equation), spec.num_unknowns)
        self.experiment, self.spec = experiment, spec
        self.observations = draw_observations(c, truth, seed)
        self.sigma = c.noise_level * float(np.std(truth.u))
        self.noise_scale = spec.solver_noise * float(np.std(truth.u))
        self.precision, root = prior_precision(spec)
        self.prior_root = root  # ½‖Lθ‖² = ½θᵀQθ
        self.fd_step = _field_fd_step(pc)
        data = observation_data(self.observations)
        self.data = {**data, "noise_key": jax.random.PRNGKey(0)}
        self.noise_root = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
        self.black_box = field_black_box(truth.spectral, spec, self.sigma, self.noise_scale, self.data)
        self._host_calls = 0
        # room for baseline_min_jacobians finite-difference Jacobians (K + 1 calls each) whatever K: the flat budget
        # (1,000 in cpu) would stop least squares mid-iteration at K = 256, where it converges in ~5 Jacobians
        self.baseline_budget = max(c.baseline_max_solver_calls, c.baseline_min_jacobians * (spec.num_unknowns + 1))

    def initial_phi(self) -> Any:
        return jnp.zeros(self.unknowns, jnp.float64)

    def meta_optimizer(self) -> Any:
        return optax.chain(prior_gradient(self.precision), _adam(self.config.outer, self.truth.equation))

    @functools.cached_property
    def unrolled(self) -> Any:
        return field_unrolled_problem(self.truth.spectral, self.spec, self.sigma, self.observations)

    def use_estimator(self, estimator: Any) -> None:
        super().use_estimator(estimator)
        if not self.black_box_only and self.spec.solver_noise > 0:
            raise UsageError(
                f"--solver-noise {self.spec.solver_noise:g}: the noisy solver is a black box; {type(estimator).__name__} "
                "differentiates through the solver (use fg2u_zo or the classic baselines)"
            )

    def next_inputs(self, step: int) -> tuple[Any, Any]:
        key = jax.random.fold_in(self.key, step)
        if not self.black_box_only:
            return key, _batched(self.unrolled)
        data = {**self.data, "noise_key": jax.random.fold_in(self.noise_root, step)}
        return key, _batched(self.black_box.replace(data=data))

    def example_inputs(self) -> tuple[Any, Any]:
        return self.next_inputs(0)

    def curve_value(self, phi: Any) -> float:
        return relative_field_error(np.asarray(phi), self.truth.spectral.num_points, self.unknowns)

    def evaluate(self, phi: Any, *, final: bool) -> dict[str, float]:
        if not final:
            return {"relative_field_error": self.curve_value(phi)}
        return self.final_metrics(phi)

    def objective_parts(self, theta: np.ndarray) -> tuple[float, float]:
        """``(misfit, prior)`` of J at θ with the deterministic solver."""
        spec = dataclasses.replace(self.spec, solver_noise=0.0)
        _, misfit = field_objective_parts(self.truth.spectral, spec, self.sigma, 0.0)
        value = float(jax.jit(misfit)(jnp.asarray(theta), self.data))
        return value, 0.5 * float(theta @ self.precision @ theta)

    def final_metrics(self, phi: Any) -> dict[str, float]:
        theta = np.asarray(phi, dtype=np.float64).reshape(self.unknowns)
        if not np.all(np.isfinite(theta)):
            raise Diverged(f"the field estimate became non-finite: {theta[:4].tolist()} ...", self.num_meta_steps)
        misfit, prior = self.objective_parts(theta)
        map_fit = self.experiment.map_fit(self)
        error = self.curve_value(theta)
        return {
            "relative_field_error": error,
            "objective": misfit + prior,
            "misfit": misfit,
            "prior_term": prior,
            "map_relative_field_error": map_fit["relative_field_error"],
            "map_objective": map_fit["objective"],
            "error_over_map_error": error / map_fit["relative_field_error"],
            "initial_relative_field_error": self.curve_value(np.zeros(self.unknowns)),
        }

    def curve_metrics(self, curve: Curve) -> dict[str, float]:
        target = self.target_factor * self.experiment.map_fit(self)["relative_field_error"]
        return costs_to_reach(curve, {"map": target * (1 + 1e-12)}, 0.0)

    def residual_function(self, batch_sizes: tuple[int, ...]):
        predict, _ = field_objective_parts(self.truth.spectral, self.spec, self.sigma, self.noise_scale)
        sigma = self.sigma

        def residuals(theta, data):
            return (predict(theta, data) - data["u"]) / sigma

        def data():
            self._host_calls += 1  # a fresh key per batch of calls (rows differ by θ's bits)
            return {
                **self.data,
                "noise_key": jax.random.fold_in(jax.random.fold_in(self.noise_root, 2), self._host_calls),
            }

        return self._compile_residuals(residuals, data, (self.unknowns,), batch_sizes)

    def details(self) -> dict[str, Any]:
        return {
            "problem_form": "black box" if self.black_box_only else "unrolled (differentiable solver)",
            "prior": self.spec.describe_prior(),
        }


class PinnTrial(Trial):
    """One (equation, seed) on the PINN inner problem (the paper's settings, one unknown)."""

    curve_metric = "relative_coefficient_error"
    log_every = 1

    def __init__(self, pc: PdeConfig, truth: GroundTruth, seed: int) -> None:
        c = pc.config
        self.pc, self.config, self.truth, self.seed = pc, c, truth, seed
        self.eq = get_equation(truth.equation)
        self.param = c.parametrisation_for(truth.equation)
        self.num_meta_steps = c.pinn_outer.steps_for(truth.equation)
        self.curve_points = min(self.num_meta_steps, _CURVE_POINTS_MAX) + 1
        self.observations = draw_observations(c, truth, seed)
        self.problem = pinn_problem(self.eq, c.pinn, self.param, self.observations, collocation_seed=seed)
        self.key = jax.random.PRNGKey(seed)
        self.c0 = initial_coefficient(c, truth.equation, seed)
        self._inputs = _batched(self.problem)

    def initial_phi(self) -> Any:
        return jnp.asarray(phi_from_coefficient(self.c0, self.param), dtype=jnp.float64)

    def meta_optimizer(self) -> Any:
        return _adam(self.config.pinn_outer, self.truth.equation)

    def make_problem(self, inputs: Any) -> Any:
        return inputs

    def next_inputs(self, step: int) -> tuple[Any, Any]:
        return jax.random.fold_in(self.key, step), self._inputs

    def evaluate(self, phi: Any, *, final: bool) -> dict[str, float]:
        c = float(coefficient_from_phi(jnp.asarray(phi), self.param))
        error = abs(c - self.truth.target_coefficient) / self.truth.target_coefficient
        if not final:
            return {"relative_coefficient_error": error}
        from fg2u.jax import unroll  # noqa: PLC0415

        state = jax.jit(unroll)(self.problem, phi)
        misfit = float(self.problem.outer_loss(state, phi, self.problem.outer_batch))
        prediction = np.asarray(pinn_prediction(state.params, self.eq, self.truth.t, self.truth.x))
        if not (np.all(np.isfinite(prediction)) and math.isfinite(misfit)):
            raise Diverged(f"{self.eq.name}: the PINN's prediction or misfit is NaN/inf", self.num_meta_steps)
        return {
            "relative_coefficient_error": error,
            "relative_l2_error": float(np.linalg.norm(prediction - self.truth.u) / np.linalg.norm(self.truth.u)),
            "final_misfit": misfit,
            "coefficient": c,
            "initial_coefficient": self.c0,
            "target_coefficient": self.truth.target_coefficient,
        }


# ------------------------------------------------------------------------------------------ baselines
def _least_squares(trial: Any, settings: Mapping[str, Any]) -> MethodResult:
    return run_least_squares(_fit(trial, "least_squares"), settings)


def _nelder_mead(trial: Any, settings: Mapping[str, Any]) -> MethodResult:
    return run_nelder_mead(_fit(trial, "nelder_mead"), settings)


def _fit(trial: Any, name: str) -> BlackBoxFit:
    if not isinstance(trial, BlackBoxFit):
        raise UsageError(f"--estimators {name} runs on the spectral solver (--solver spectral), not the PINN")
    trial.use_estimator(fj.FG2U_ZO())  # any zeroth-order estimator selects the black box
    return trial


def _zo_quadrature(trial: Any, settings: Mapping[str, Any]) -> MethodResult:
    """The paper's fixed-quadrature FG²U-ZO through the runner's meta loop (as an estimator run)."""
    if not isinstance(trial, SpectralTrial):
        raise UsageError("--estimators zo_quadrature runs on the spectral solver in the paper / raissi settings")
    quadrature = FixedQuadratureZO(
        int(settings["num_points"]), float(settings["half_width"]), float(settings["eps"]), str(settings["scheme"])
    )
    method = Method("zo_quadrature", Spec("zo_quadrature", dict(settings)), estimator=quadrature)
    return run_method(EXPERIMENT, trial, method, progress=False)


def _noise_floor(trial: Any, settings: Mapping[str, Any]) -> MethodResult:
    """The Cramér–Rao floor of the relative coefficient error for the trial's observations (same points, same
    noise level; :mod:`.information`)."""
    if not isinstance(trial, SpectralTrial):
        raise UsageError("--estimators noise_floor applies to the paper and raissi settings (the field's: map_fit)")
    c = trial.config
    start = time.perf_counter()
    floor = noise_floor(trial.eq, trial.truth, trial.observations, c.unknowns, c.noise_level)
    metrics = {
        "relative_coefficient_error": floor.expected_max_relative_error,
        "coefficient_relative_std": float(floor.relative_std[-1]),
        "target_coefficient": trial.truth.target_coefficient,
        "bound_time_s": time.perf_counter() - start,
    }
    if c.unknowns == 2:
        metrics.update(
            lambda1_relative_error=float(floor.expected_relative_error[0]),
            lambda2_relative_error=float(floor.expected_relative_error[1]),
            lambda1_relative_std=float(floor.relative_std[0]),
        )
    details = {"kind": "Cramér–Rao bound of the least-squares fit, linearised at the true coefficients (not a method)"}
    return MethodResult(metrics=metrics, details=details)


def _map_fit(trial: Any, settings: Mapping[str, Any]) -> MethodResult:
    """The field setting's yardstick: the converged penalised least-squares (MAP) fit with the exact Jacobian
    and its posterior spread."""
    if not isinstance(trial, FieldTrial):
        raise UsageError("--estimators map_fit is the field setting's yardstick (--setting field)")
    fit = trial.experiment.map_fit(trial)
    metrics = {k: v for k, v in fit.items() if isinstance(v, float)}
    curve = Curve(
        "relative_field_error",
        tuple(range(len(fit["curve"]))),
        tuple(s for s, _ in fit["curve"]),
        tuple(v for _, v in fit["curve"]),
    )
    return MethodResult(
        metrics=metrics, curve=curve, details={"prior": trial.spec.describe_prior(), "message": fit["message"]}
    )


# ----------------------------------------------------------------------------------------- experiment
class PDE(Experiment):
    """PDE coefficient discovery (Burgers, Allen-Cahn, KdV; a coefficient field) on a spectral solver or a PINN."""

    name = "pde"
    backend = "jax"
    description = __doc__
    config_names = tuple(CONFIGS)
    default_config = "cpu"

    def __init__(self) -> None:
        self._truths: dict[tuple, GroundTruth] = {}
        self._maps: dict[str, dict[str, Any]] = {}
        self._headline = "relative_coefficient_error"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--setting",
            choices=sorted(SETTINGS),
            default="paper",
            help="paper: 64 observations on an 8x8 interior grid, one unknown; raissi: 2,000 random observations, "
            "two unknowns (lambda1, lambda2) for burgers and kdv; field: the Allen-Cahn reaction rate as a field of "
            "K unknowns (--field-size), 2,000 random observations, 1 %% noise",
        )
        p.add_argument(
            "--equations",
            nargs="+",
            choices=sorted(EQUATIONS),
            default=None,
            help=f"default: {' '.join(PAPER_EQUATIONS)} (raissi: those with a second unknown; field: its own)",
        )
        p.add_argument("--solver", choices=SOLVERS, default="spectral", help="spectral (default) or pinn")
        p.add_argument("--field-size", type=int, default=None, help="field setting: K unknowns (default 16)")
        p.add_argument(
            "--solver-noise",
            type=float,
            default=0.0,
            help="field setting: a noisy solver (Monte Carlo observation operator) whose every call adds "
            "LEVEL·std(u)·N(0,1) to each predicted value (default 0: deterministic)",
        )
        p.add_argument(
            "--num-observations", type=int, default=None, help="override the setting's number of observations"
        )
        p.add_argument(
            "--data-source",
            choices=DATA_SOURCES,
            default=None,
            help="solver (default): ground truth from our own fine spectral solve, generated once and cached; "
            "reference: the authors' .mat files (the default when --data-dir is given)",
        )
        p.add_argument(
            "--data-dir",
            default=None,
            help=f"folder with burgers.mat, KdV.mat, Allen_Cahn.mat for --data-source reference (default: ${ENV_VAR})",
        )
        p.add_argument(
            "--cache-dir",
            default=None,
            help=f"cache of the generated ground truths (default: ${CACHE_ENV_VAR} or ~/.cache/fg2u/pde)",
        )
        p.add_argument("--noise", type=float, default=None, help="observation noise level L: adds L·std(u)·N(0,1)")
        p.add_argument("--outer-steps", type=int, default=None, help="override the config's outer (meta) steps")
        p.add_argument("--outer-lr", type=float, default=None, help="override the config's outer (Adam) learning rate")
        p.add_argument("--init-scan", type=int, default=None, help="override the initial scan (0: start at the draw)")
        p.add_argument(
            "--stop-below",
            type=float,
            default=None,
            help="cost runs: stop once the relative coefficient error (from the known target) is below this",
        )

    def configure(self, args: argparse.Namespace) -> PdeConfig:
        # float64 for the whole process: the finite differences use ε = 1e-4 (tests restore the flag)
        jax.config.update("jax_enable_x64", True)
        enable_compilation_cache()
        config = apply_setting(CONFIGS[args.config], args.setting)
        changes: dict[str, Any] = {}
        for flag, value, low in (
            ("--num-observations", args.num_observations, 1),
            ("--outer-steps", args.outer_steps, 1),
            ("--init-scan", args.init_scan, 0),
            ("--field-size", args.field_size, 1),
        ):
            if value is not None and value < low:
                raise UsageError(f"{flag} must be >= {low}, got {value}")
        for flag, value in (("--noise", args.noise), ("--solver-noise", args.solver_noise)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise UsageError(f"{flag} must be a finite number >= 0, got {value}")
        if args.stop_below is not None and not args.stop_below > 0:
            raise UsageError(f"--stop-below must be > 0, got {args.stop_below}")
        if args.outer_lr is not None and not (math.isfinite(args.outer_lr) and args.outer_lr > 0):
            raise UsageError(f"--outer-lr must be a finite number > 0, got {args.outer_lr}")
        if args.num_observations is not None:
            changes["num_observations"] = args.num_observations
        if args.noise is not None:
            changes["noise_level"] = args.noise
        if args.init_scan is not None:
            changes["init_scan"] = args.init_scan
        if args.stop_below is not None:
            changes["stop_below"] = args.stop_below
        for name in ("outer", "pinn_outer"):
            outer = getattr(config, name)
            if args.outer_steps is not None:
                outer = dataclasses.replace(outer, steps=args.outer_steps)
            if args.outer_lr is not None:
                outer = dataclasses.replace(outer, lr=dict.fromkeys(outer.lr, args.outer_lr))
            changes[name] = outer
        field = None
        if args.setting == "field":
            if args.solver != "spectral":
                raise UsageError("--setting field runs on the spectral solver; drop --solver pinn")
            if args.equations not in (None, [FIELD_EQUATION]):
                raise UsageError(f"--setting field has its own equation ({FIELD_EQUATION}); drop --equations")
            k = args.field_size or config.unknowns
            if k > config.spectral[FIELD_EQUATION].num_points:
                raise UsageError(
                    f"--field-size {k}: more nodes than the {config.spectral[FIELD_EQUATION].num_points} grid points "
                    f"of config {config.name!r}"
                )
            changes["unknowns"] = k
            field = FieldSpec(k, solver_noise=args.solver_noise)
            equations: tuple[str, ...] = (FIELD_EQUATION,)
            self._headline = "relative_field_error"
        else:
            for flag, value, default in (
                ("--field-size", args.field_size, None),
                ("--solver-noise", args.solver_noise, 0.0),
            ):
                if value != default:
                    raise UsageError(f"{flag} applies to --setting field only")
            equations = tuple(
                args.equations
                or [e for e in PAPER_EQUATIONS if config.unknowns == 1 or get_equation(e).nonlinear_unknown]
            )
            if config.unknowns == 2:
                bad = [e for e in equations if not get_equation(e).nonlinear_unknown]
                if bad:
                    raise UsageError(
                        f"--setting {args.setting} has two unknowns; {', '.join(bad)} has one (use burgers, kdv)"
                    )
                if args.solver == "pinn":
                    raise UsageError("--solver pinn follows the paper's setting (one unknown); use --setting paper")
            self._headline = "relative_coefficient_error"
        config = config.replace(**changes)
        data_source = args.data_source or ("reference" if args.data_dir is not None else "solver")
        pc = PdeConfig(config, equations, data_source, args.data_dir, args.cache_dir, args.solver, field)
        self._check_methods(pc, args.estimators or [])
        return pc

    def _check_methods(self, pc: PdeConfig, texts: Sequence[str]) -> None:
        """Errors that depend on the config, before any work (the runner checks the specs themselves)."""
        for text in texts:
            try:
                key = parse(text).key
            except SpecError:
                continue  # the runner reports it
            if key == "noise_floor" and not pc.config.noise_level > 0:
                raise UsageError(
                    "--estimators noise_floor needs noisy observations: pass --noise LEVEL (e.g. --noise 0.01); "
                    "exact data have no noise floor"
                )
            if key == "noise_floor" and pc.field is not None:
                raise UsageError("--estimators noise_floor: the field setting's yardstick is map_fit")
            if key == "map_fit" and pc.field is None:
                raise UsageError("--estimators map_fit is the field setting's yardstick (--setting field)")
            if key in ("least_squares", "nelder_mead", "zo_quadrature", "noise_floor") and pc.solver == "pinn":
                raise UsageError(f"--estimators {key} runs on the spectral solver; drop --solver pinn")
            if key == "zo_quadrature" and pc.field is not None:
                raise UsageError("--estimators zo_quadrature (12 nodes per unknown) is for the paper/raissi settings")
            white_box = key in registry.names() and key != "fg2u_zo"
            if white_box and pc.field is not None and pc.field.solver_noise > 0:
                raise UsageError(
                    f"--estimators {text}: the noisy solver (--solver-noise) is a black box; only fg2u_zo and the "
                    "classic baselines (least_squares, nelder_mead) apply"
                )

    def default_methods(self, config: PdeConfig) -> Sequence[str]:
        if config.solver == "pinn":
            return ("fg2u", "rgu", "trgu")
        if config.field is not None:
            white = () if config.field.solver_noise > 0 else ("fg2u", "rgu", "rgu_checkpointed")
            return ("map_fit", "fg2u_zo", "least_squares", "nelder_mead", *white)
        return ("fg2u_zo", "least_squares")

    def presets(self, config: PdeConfig) -> Mapping[str, Mapping[str, Any]]:
        c = config.config
        zo = {"num_directions": c.num_directions, "eps": c.eps, "distribution": c.distribution}
        if config.field is not None and config.field.solver_noise > 0:
            zo.update(NOISY_ZO)
        if config.solver == "pinn":
            horizon = c.pinn.inner_steps
        elif config.field is not None:
            horizon = c.spectral[FIELD_EQUATION].time_fraction
            horizon = max(1, int(round(len(default_grid(FIELD_EQUATION)[1]) * horizon)) - 1)
        else:
            horizon = min(
                max(1, int(round(len(default_grid(e)[1]) * c.spectral[e].time_fraction)) - 1) for e in config.equations
            )
        # Nelder-Mead's initial simplex in the field setting: SciPy's default edge around the zero start (the prior
        # mean) is 0.00025, a simplex that never leaves the start (34 % error at every K); the prior's marginal
        # standard deviation is the natural scale of θ
        simplex = {"nelder_mead": {"initial_step": config.field.prior_std}} if config.field is not None else {}
        return {
            **simplex,
            "fg2u_zo": zo,
            "fg2u": {"num_directions": c.num_directions, "distribution": c.distribution},
            "trgu": {"truncation": max(1, math.ceil(c.trgu_truncation_fraction * horizon))},
        }

    def baselines(self) -> Mapping[str, Baseline]:
        return {
            "least_squares": Baseline(
                "LeastSquares",
                _least_squares,
                defaults={
                    "method": "trf",
                    "max_solver_calls": None,
                    "ftol": 1e-8,
                    "xtol": 1e-8,
                    "gtol": 1e-8,
                    "diff_step": None,
                },
                description="scipy least_squares, trust-region reflective, finite-difference Jacobian (K + 1 solves)",
                yardstick=False,
            ),
            "nelder_mead": Baseline(
                "NelderMead",
                _nelder_mead,
                defaults={
                    "max_solver_calls": None,
                    "xatol": 1e-4,
                    "fatol": 1e-4,
                    "adaptive": "auto",
                    "initial_step": None,
                },
                description="scipy Nelder-Mead simplex (derivative-free)",
                yardstick=False,
            ),
            "zo_quadrature": Baseline(
                "ZOQuadrature",
                _zo_quadrature,
                defaults={"num_points": 12, "half_width": 5.0, "eps": 1e-4, "scheme": "forward"},
                description="the paper's fixed 12-point quadrature FG2U-ZO (13 solves per step for one unknown)",
                yardstick=False,
            ),
            "noise_floor": Baseline(
                "NoiseFloor",
                _noise_floor,
                description="the Cramér–Rao floor of the noisy data (a bound, not a method; needs --noise > 0)",
            ),
            "map_fit": Baseline(
                "MAPFit",
                _map_fit,
                description="field setting: the converged penalised least-squares fit (exact Jacobian) and its "
                "posterior spread (a yardstick)",
            ),
        }

    def tasks(self, config: PdeConfig) -> Sequence[Task]:
        return [self._task(config, e) for e in config.equations]

    def _truth(self, config: PdeConfig, equation: str) -> GroundTruth:
        key = (config.config.name, equation, config.data_source, config.data_dir, config.cache_dir)
        if key not in self._truths:
            try:
                self._truths[key] = build_ground_truth(
                    config.config, equation, config.data_source, config.data_dir, config.cache_dir
                )
            except MissingDataError as error:
                raise UsageError(f"--data-dir: {error}") from None
            except ValueError as error:
                raise UsageError(f"--data-source {config.data_source}: {error}") from None
        return self._truths[key]

    def _task(self, config: PdeConfig, equation: str) -> Task:
        c = config.config
        truth = self._truth(config, equation)
        s = truth.spectral
        problem: dict[str, Any] = {
            "setting": c.setting,
            "unknowns": c.unknowns,
            "observation_layout": c.observation_layout,
            "num_observations": c.num_observations,
            "noise_level": c.noise_level,
            "data_source": truth.data_source,
            "solver": config.solver,
            "grid": [len(truth.t), len(truth.x)],
        }
        if config.solver == "spectral":
            boundary = "periodic" if equation == FIELD_EQUATION else get_equation(equation).boundary
            problem.update(
                num_points=s.num_points,
                dt=s.dt,
                dealias=s.dealias,
                basis="chebyshev" if boundary == "dirichlet" else "fourier",
                boundary=boundary,
                time_stepper="ETDRK4",
            )
        else:
            problem.update(dataclasses.asdict(c.pinn))
        if config.field is not None:
            f = config.field
            problem.update(
                field="Allen-Cahn reaction rate r(x) = 5 exp(f(x)), f piecewise linear on K periodic nodes",
                diffusion=f.diffusion,
                prior=f.describe_prior(),
                prior_range=f.prior_range,
                prior_std=f.prior_std,
                solver_noise=f.solver_noise,
            )
        return Task(equation, f"{equation}-{truth.data_source}", problem)

    def trial(self, config: PdeConfig, task: Task, seed: int) -> Trial:
        truth = self._truth(config, task.name)
        if config.solver == "pinn":
            return PinnTrial(config, truth, seed)
        if config.field is not None:
            return FieldTrial(self, config, truth, seed)
        return SpectralTrial(config, truth, seed)

    def config_settings(self, config: PdeConfig) -> dict[str, Any]:
        return config.settings()

    def headline(self) -> str | None:
        return self._headline

    # -- the field setting's yardstick, once per (config, K, seed)
    def map_fit(self, trial: FieldTrial) -> dict[str, Any]:
        """The converged penalised least-squares fit of ``trial``'s observations with the solver's exact Jacobian
        (forward mode) and the Laplace posterior spread of the rate field at it; cached in memory and in the
        ground-truth cache folder (the noisy-solver variant has the same objective: the same fit)."""
        c, spec = trial.config, dataclasses.replace(trial.spec, solver_noise=0.0)
        meta = {
            "spectral": dataclasses.asdict(trial.truth.spectral),
            "reference": dataclasses.asdict(c.reference.get(FIELD_EQUATION, c.spectral[FIELD_EQUATION])),
            "field": dataclasses.asdict(spec),
            "observations": [c.noise_level, c.num_observations, c.observation_layout, trial.seed],
            "grid": [len(trial.truth.t), len(trial.truth.x)],
            "version": SOLVER_VERSION,
        }
        digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
        if digest not in self._maps:
            path = resolve_cache_dir(trial.pc.cache_dir) / f"mapfit-{digest}.json"
            try:
                self._maps[digest] = json.loads(path.read_text())
            except (OSError, ValueError):
                self._maps[digest] = _compute_map_fit(trial)
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(f".{os.getpid()}.tmp")
                    tmp.write_text(json.dumps({**self._maps[digest], "meta": meta}))
                    os.replace(tmp, path)
                except OSError:
                    pass  # a read-only cache folder: recomputed next time
        return self._maps[digest]

    def finish(self, records: Sequence[ResultRecord], out: Path, config: PdeConfig) -> None:
        from fg2u_bench_pde.plots import save_cost_figures  # noqa: PLC0415 (matplotlib only when drawing)

        if not records:
            return
        from fg2u.experiment import read_records  # noqa: PLC0415

        path = out / f"{records[0].config}.jsonl"
        for figure in save_cost_figures(read_records(path), out, records[0].config):
            print(f"error against solver calls and seconds -> {figure}")


def _compute_map_fit(trial: FieldTrial) -> dict[str, Any]:
    from scipy.optimize import least_squares  # noqa: PLC0415

    spec = dataclasses.replace(trial.spec, solver_noise=0.0)
    predict, _ = field_objective_parts(trial.truth.spectral, spec, trial.sigma, 0.0)
    sigma, root = trial.sigma, trial.prior_root
    data = trial.data

    def whitened(theta):
        return (predict(theta, data) - data["u"]) / sigma

    residual = jax.jit(whitened)
    jacobian = jax.jit(jax.jacfwd(whitened))
    zero = jnp.zeros(trial.unknowns)
    residual(zero).block_until_ready()
    tic = time.perf_counter()
    for _ in range(5):  # one solve's seconds on this machine (for the 2-worker time model of the README)
        residual(zero).block_until_ready()
    single_solve_s = (time.perf_counter() - tic) / 5
    start = time.perf_counter()
    curve: list[tuple[float, float]] = [(0.0, trial.curve_value(np.zeros(trial.unknowns)))]

    def fun(theta):
        return np.concatenate([np.asarray(residual(jnp.asarray(theta))), root @ theta])

    def jac(theta):
        return np.vstack([np.asarray(jacobian(jnp.asarray(theta))), root])

    def callback(intermediate_result):
        curve.append((time.perf_counter() - start, trial.curve_value(intermediate_result.x)))

    out = least_squares(
        fun, np.zeros(trial.unknowns), jac=jac, method="trf", ftol=1e-12, xtol=1e-12, gtol=1e-12, callback=callback
    )
    theta = np.asarray(out.x)
    jmat = np.asarray(jacobian(jnp.asarray(theta))) * sigma  # ∂u/∂θ at the fit
    cov = posterior_covariance(jmat, sigma, trial.precision)
    n = trial.truth.spectral.num_points
    rate = 5.0 * np.exp(hat_basis(n, trial.unknowns) @ theta)
    grad = rate[:, None] * hat_basis(n, trial.unknowns)  # ∂r(x_j)/∂θ
    x = np.asarray(grid_points(n, jnp.float64))
    truth = 5.0 * np.exp(true_log_rate(x))
    spread = math.sqrt(float(np.trace(grad @ cov @ grad.T))) / float(np.linalg.norm(truth))
    misfit = 0.5 * float(np.sum(np.asarray(residual(jnp.asarray(theta))) ** 2))
    prior = 0.5 * float(theta @ trial.precision @ theta)
    return {
        "relative_field_error": trial.curve_value(theta),
        "posterior_relative_spread": spread,
        "objective": misfit + prior,
        "misfit": misfit,
        "prior_term": prior,
        "iterations": float(out.njev),
        "fit_time_s": time.perf_counter() - start,
        "single_solve_seconds": single_solve_s,
        "curve": curve,
        "message": str(out.message),
    }


def enable_compilation_cache() -> str | None:
    """JAX's persistent compilation cache for this benchmark: the meta step, the scan and the residuals of a config
    compile to the same executables for every seed and noise level (the observations are traced inputs), so later
    runs skip XLA compilation (tens of seconds per Burgers run on 2 cores). Folder: ``$FG2U_PDE_JAX_CACHE`` or
    ``~/.cache/fg2u/pde-jax``; ``FG2U_PDE_JAX_CACHE=off`` disables it. Returns it."""
    return harness.enable_compilation_cache("FG2U_PDE_JAX_CACHE", str(Path.home() / ".cache" / "fg2u" / "pde-jax"))


EXPERIMENT = PDE()


def cli(argv: Sequence[str] | None = None) -> int:
    """The ``fg2u-bench-pde`` console script (= ``python -m fg2u_bench_pde``)."""
    return main(EXPERIMENT, argv)
