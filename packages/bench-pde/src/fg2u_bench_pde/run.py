"""The benchmark loop: fit the coefficient φ by Adam on meta-gradient estimates; write result records.

``python -m fg2u_bench_pde --config smoke|cpu|paper --equations … --estimators … --seeds …``

Estimators and the inner solver they use:

* ``fg2u_zo_forward``, ``fg2u_zo_central`` — :class:`fg2u.jax.FG2U_ZO` on the spectral solver (black box);
* ``zo_quadrature`` — the paper's fixed 12-point quadrature (:class:`.quadrature.FixedQuadratureZO`), same solver;
* ``fg2u`` (:class:`fg2u.jax.FG2U`), ``rgu`` (:class:`fg2u.jax.RGU`), ``trgu`` (:class:`fg2u.jax.TRGU`,
  truncation ``K = ⌈trgu_truncation_fraction·T⌉``) — on the PINN inner problem.

Observations come from our own fine spectral solve at the true coefficients (``--data-source solver``,
the default, cached; no data folder needed) or from the authors' reference files (``--data-source
reference`` / ``--data-dir``; the target is then the coefficient the file was made with).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fg2u.harness import run_meta_loop
from fg2u.jax.harness import make_meta_step
from fg2u.records import append_records, make_record, peak_rss_bytes
from fg2u_bench_pde.configs import BenchConfig, default_grid
from fg2u_bench_pde.equations import (
    UnstableSettingError,
    coefficient_from_phi,
    get_equation,
    phi_from_coefficient,
)
from fg2u_bench_pde.observations import sample_observations
from fg2u_bench_pde.pinn import pinn_prediction, pinn_problem
from fg2u_bench_pde.problems import spectral_prediction, spectral_problem
from fg2u_bench_pde.quadrature import FixedQuadratureZO
from fg2u_bench_pde.reference import load_reference, solver_reference
from fg2u_bench_pde.spectral import SpectralSettings, check_solution

__all__ = [
    "ESTIMATORS",
    "PAPER_RESULTS",
    "EstimatorSpec",
    "Task",
    "build_task",
    "make_estimator",
    "run_one",
    "noise_floor_record",
    "draw_observations",
    "format_table",
]

ESTIMATORS = {
    "fg2u_zo_forward": "spectral",
    "fg2u_zo_central": "spectral",
    "zo_quadrature": "spectral",
    "fg2u": "pinn",
    "rgu": "pinn",
    "trgu": "pinn",
    "noise_floor": "bound",  # not an estimator: the Cramér–Rao floor of the noisy data (.information)
}
DATA_SOURCES = ("solver", "reference")
# The paper's Fig. 2 / Table F.3: relative coefficient error of FG²U-ZO + numerical solver ≈ 1–3 %.
PAPER_RESULTS = {"spectral": "≈1–3 %", "pinn": "n/a"}
# Per-equation noise-free FG²U-ZO errors of the paper (issue 12: 0.97 / 2.34 / 0.72 × 10⁻²), in %.
PAPER_ZO_ERROR_PCT = {"burgers": 0.97, "allen_cahn": 2.34, "kdv": 0.72}
# Raissi et al. (J. Comput. Phys. 2019) PINN errors in % (λ₁, λ₂) of the two-unknown setting, by noise level
# (as quoted in issue 12; λ₁ of the KdV discrete-time model not quoted).
RAISSI_PINN_ERROR_PCT = {
    ("burgers", 0.0): (0.085, 0.12),
    ("burgers", 0.01): (0.04, 0.84),
    ("kdv", 0.0): (None, 0.008),
    ("kdv", 0.01): (None, 0.016),
}
# Index of each equation in the seed of its initial coefficient (fixed, so adding equations changes nothing).
_SEED_INDEX = {"allen_cahn": 0, "burgers": 1, "kdv": 2, "allen_cahn_periodic": 3}


@dataclasses.dataclass(frozen=True)
class Task:
    """One equation's data: the solution grid, the ground truth on it, and the target coefficient(s)."""

    equation: str
    x: np.ndarray  # (n_x,)
    t: np.ndarray  # (n_t,)
    u: np.ndarray  # (n_t, n_x) ground truth
    target_coefficient: float
    data_source: str
    spectral: SpectralSettings
    reference_path: str = ""
    target_nonlinear: float = 1.0  # λ₁ of the two-unknown setting


def build_task(config: BenchConfig, equation: str, data_source: str = "solver", data_dir=None, cache_dir=None) -> Task:
    """The ground truth of ``equation`` on its grid (cut as the config says).

    ``data_source="solver"``: our solver at the true coefficient on the config's fine ``reference``
    discretisation, cached (:func:`fg2u_bench_pde.reference.solver_reference`); ``"reference"``: the
    authors' ``.mat`` file from ``data_dir`` or ``$FG2U_PDE_DATA``.
    """
    eq = get_equation(equation)
    if data_source not in DATA_SOURCES:
        raise ValueError(f"data_source must be one of {DATA_SOURCES}, got {data_source!r}")
    if equation not in config.spectral:
        raise ValueError(f"config {config.name!r} has no settings for equation {equation!r}")
    sc = config.spectral[equation]
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
    return Task(equation, np.asarray(x), np.asarray(t), np.asarray(u), float(target), data_source, settings, ref.path)


@dataclasses.dataclass(frozen=True)
class EstimatorSpec:
    """An estimator with its record name, solver, settings for the record and cost per step.

    ``record_name``: ``"FG2U_ZO"`` (random directions or the paper's fixed quadrature; the scheme and the
    direction setting are in ``settings``), ``"FG2U"``, ``"RGU"``, ``"TRGU"``. ``solves_per_step``: solver
    calls of one estimate (spectral) or None (PINN).
    """

    name: str
    estimator: Any
    record_name: str
    solver: str
    settings: dict
    solves_per_step: int | None


def make_estimator(name: str, config: BenchConfig, unknowns: int | None = None) -> EstimatorSpec:
    """The estimator called ``name`` with the config's settings — the one place estimators are built."""
    import fg2u.jax as fj

    unknowns = config.unknowns if unknowns is None else unknowns
    b = config.num_directions
    if name in ("fg2u_zo_forward", "fg2u_zo_central"):
        scheme = name.rsplit("_", 1)[1]
        est = fj.make("fg2u_zo", num_directions=b, eps=config.eps, scheme=scheme, distribution=config.distribution)
        settings = {**est.settings(), "directions": config.distribution}
        return EstimatorSpec(name, est, est.display_name, "spectral", settings, b + 1 if scheme == "forward" else 2 * b)
    if name == "zo_quadrature":
        est = FixedQuadratureZO(config.quadrature_points, config.quadrature_half_width, config.eps, "forward")
        settings = {
            "scheme": "forward",
            "directions": f"quadrature{config.quadrature_points}",
            "num_directions": config.quadrature_points * unknowns,
            "eps": config.eps,
            "quadrature_half_width": config.quadrature_half_width,
        }
        return EstimatorSpec(name, est, "FG2U_ZO", "spectral", settings, est.solves_per_step(unknowns))
    if name in ("fg2u", "rgu", "trgu"):  # on the PINN, from the core's registry
        options = {
            "fg2u": {"num_directions": b, "distribution": config.distribution},
            "trgu": {"truncation": max(1, math.ceil(config.trgu_truncation_fraction * config.pinn.inner_steps))},
            "rgu": {},
        }[name]
        est = fj.make(name, **options)
        settings = {**est.settings(), **({"directions": config.distribution} if name == "fg2u" else {})}
        return EstimatorSpec(name, est, est.display_name, "pinn", settings, None)
    raise ValueError(f"unknown estimator {name!r}; choose from {sorted(ESTIMATORS)}")


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


def _deviation(config: BenchConfig, solver: str) -> str:
    if solver == "spectral" and config.init_scan > 0:
        return (
            f"init_scan: the descent starts from the best of the random draw and {config.init_scan} "
            "log-spaced coefficients (not in the paper's purely local protocol)"
        )
    return "none"


def draw_observations(config: BenchConfig, task: Task, seed: int):
    """The seeded observations of one run: the config's number, layout and noise level on ``task``'s grid."""
    return sample_observations(
        task.x,
        task.t,
        task.u,
        num_points=config.num_observations,
        noise_level=config.noise_level,
        seed=seed,
        layout=config.observation_layout,
    )


def run_one(
    config: BenchConfig,
    task: Task,
    estimator_name: str,
    seed: int,
    *,
    progress: bool = True,
    estimator=None,
):
    """Fits φ for one (equation, estimator, seed); returns a :class:`fg2u.records.ResultRecord`.

    Besides the final errors, the record holds the cost of discovery: for each threshold τ of
    ``config.cost_thresholds`` (1 %, 0.1 %), the outer step, the solver calls (initial scan included) and
    the seconds (compilation excluded) until the relative coefficient error (the largest over the
    unknowns) first falls below τ; NaN when it never does. ``config.stop_below`` (cost runs only) ends
    the descent once that error — known here because the target is — is below it; the record says so.

    Raises :class:`UnstableSettingError` naming the setting when a loss, φ or the solution turns NaN/inf or
    the coefficient non-positive.
    """
    if estimator_name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator_name!r}; choose from {sorted(ESTIMATORS)}")
    spec = make_estimator(estimator_name, config)
    solver = spec.solver
    unknowns = config.unknowns
    if solver == "pinn" and unknowns != 1:
        raise ValueError("the PINN baseline follows the paper's setting (one unknown); use --setting paper")
    eq = get_equation(task.equation)
    if unknowns == 2 and not eq.nonlinear_unknown:
        raise ValueError(f"{task.equation} has one unknown only; the 'raissi' setting applies to burgers and kdv")
    param = config.parametrisation_for(task.equation)
    estimator = estimator if estimator is not None else spec.estimator
    obs = draw_observations(config, task, seed)
    if solver == "spectral":
        problem = spectral_problem(eq, task.spectral, param, obs, unknowns)
        outer = config.outer
    else:
        problem = pinn_problem(eq, config.pinn, param, obs, collocation_seed=seed)
        outer = config.pinn_outer
    lr = outer.lr[task.equation]
    num_outer_steps = outer.steps_for(task.equation)
    schedule = (
        optax.constant_schedule(lr)
        if outer.final_lr_fraction >= 1.0
        else optax.cosine_decay_schedule(lr, num_outer_steps, alpha=outer.final_lr_fraction)
    )
    optimizer = optax.adam(schedule, b1=outer.b1, b2=outer.b2)

    c_drawn = initial_coefficient(config, task.equation, seed)
    lam0 = initial_nonlinear(task.equation, seed) if unknowns == 2 else 1.0
    targets = np.array([task.target_nonlinear, task.target_coefficient] if unknowns == 2 else [task.target_coefficient])

    def to_phi(c: float):
        if unknowns == 2:
            return jnp.asarray(
                [phi_from_coefficient(lam0, param), phi_from_coefficient(c, param)], dtype=jnp.result_type(float)
            )
        return jnp.asarray(phi_from_coefficient(c, param), dtype=jnp.result_type(float))

    def coefficients(phi) -> np.ndarray:  # (λ₁, c) or (c,)
        return np.atleast_1d(np.asarray(coefficient_from_phi(phi, param), dtype=np.float64))

    c0 = c_drawn
    scan_calls = 0
    timings = {"scan_seconds": 0.0}
    compile_start = time.perf_counter()
    if config.init_scan > 0 and solver == "spectral":
        c0 = _scan_start(config, problem, eq, param, c_drawn, to_phi=to_phi, timings=timings)
        scan_calls = config.init_scan + 1
    phi = to_phi(c0)
    key = jax.random.PRNGKey(seed)
    # the core's meta step (one estimate per step: the problem itself is the only input, leading axis 1)
    meta_step = make_meta_step(estimator, lambda p: p, optimizer)
    inputs = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], problem)
    start_carry = (phi, optimizer.init(phi), estimator.init(phi))
    compiled = meta_step.lower(*start_carry, key, inputs).compile()
    compile_s = time.perf_counter() - compile_start

    def describe(step: int, value) -> str:
        return (
            f"{task.equation} with {estimator_name} (seed {seed}, config {config.name}, parametrisation "
            f"{param}, outer lr {lr:g}) at outer step {step}: {value}; solver: "
            + (task.spectral.describe() if solver == "spectral" else f"PINN {config.pinn}")
        )

    thresholds = tuple(config.cost_thresholds)
    reached: dict = {}
    losses: list[float] = []
    start = 0.0

    def step(carry, i: int):
        phi, opt_state, est_state = carry
        new_phi, opt_state, est_state, loss = compiled(phi, opt_state, est_state, jax.random.fold_in(key, i), inputs)
        if not (np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(new_phi)))):
            c = coefficients(phi)
            raise UnstableSettingError(
                describe(
                    i,
                    f"loss={float(loss)!r}, next φ={np.asarray(new_phi)!r} at {eq.coefficient_name}={c[-1]:.6g} "
                    "(NaN/inf: the solve blew up or the coefficient left (0, ∞))",
                )
            )
        c = coefficients(new_phi)
        if not np.all(c > 0):
            raise UnstableSettingError(
                describe(
                    i,
                    f"{eq.coefficient_name}={c[-1]!r} is not positive; use the 'log' parametrisation or a smaller "
                    "outer lr",
                )
            )
        err = float(np.max(np.abs(c - targets) / targets))
        for tau in thresholds:
            if tau not in reached and err < tau:
                reached[tau] = (i + 1, timings["scan_seconds"] + time.perf_counter() - start)
        losses.append(float(loss))
        return (new_phi, opt_state, est_state), loss

    def error_below_stop(i: int, carry) -> bool:
        if config.stop_below is None:
            return False
        c = coefficients(carry[0])
        return float(np.max(np.abs(c - targets) / targets)) < config.stop_below

    start = time.perf_counter()
    result = run_meta_loop(
        step,
        start_carry,
        num_outer_steps,
        desc=f"{task.equation}/{estimator_name}/seed{seed}",
        progress_bar=progress,
        log_every=1,
        stop_when=error_below_stop,
        postfix=lambda carry: {eq.coefficient_name: f"{coefficients(carry[0])[-1]:.5g}"},
    )
    loop_s = result.seconds
    phi = result.carry[0]

    c = coefficients(phi)
    coefficient = float(c[-1])
    scale = float(c[0]) if unknowns == 2 else 1.0
    if solver == "spectral":
        objective = jax.jit(problem.objective)
        final_loss = float(objective(phi, problem.data))
        # the misfit of the true coefficients on the same (noisy) observations: an estimate that fits better
        # than the truth has an error set by the data (estimation), not by the optimiser
        target_phi = jnp.asarray([phi_from_coefficient(float(v), param) for v in targets], dtype=phi.dtype)
        loss_at_target = float(objective(target_phi.reshape(phi.shape), problem.data))
        prediction = np.asarray(spectral_prediction(eq, coefficient, task.spectral, task.x, scale))
        check_solution(prediction, eq, coefficient, task.spectral)
    else:
        from fg2u.jax import unroll

        state = jax.jit(unroll)(problem, phi)
        final_loss = float(problem.outer_loss(state, phi, problem.outer_batch))
        prediction = np.asarray(pinn_prediction(state.params, eq, task.t, task.x))
    wall = compile_s + (time.perf_counter() - start)
    if not np.all(np.isfinite(prediction)) or not np.isfinite(final_loss):
        raise UnstableSettingError(describe(num_outer_steps, "the final prediction or loss is NaN/inf"))
    rel = np.abs(c - targets) / targets
    extra = {"outer_loss_at_target": loss_at_target} if solver == "spectral" else {}
    metrics = {
        "relative_coefficient_error": float(np.max(rel)),
        "relative_l2_error": float(np.linalg.norm(prediction - task.u) / np.linalg.norm(task.u)),
        "final_outer_loss": final_loss,
        **extra,
        "coefficient": coefficient,
        "initial_coefficient": c0,
        "drawn_initial_coefficient": c_drawn,
        "target_coefficient": task.target_coefficient,
        "steps_run": len(losses),
        "setup_seconds": compile_s,
        "scan_seconds": timings["scan_seconds"],
        "loop_seconds": loop_s,
    }
    if unknowns == 2:
        metrics.update(
            lambda1=scale,
            lambda1_relative_error=float(rel[0]),
            lambda2_relative_error=float(rel[1]),
            initial_lambda1=lam0,
        )
    per_step = spec.solves_per_step
    for tau in thresholds:
        label = f"{100 * tau:g}pct"
        step_at, secs = reached.get(tau, (math.nan, math.nan))
        metrics[f"steps_to_{label}"] = float(step_at)
        metrics[f"seconds_to_{label}"] = float(secs)
        metrics[f"solver_calls_to_{label}"] = (
            float(scan_calls + step_at * per_step) if per_step is not None else math.nan
        )
    settings = {
        "estimator_class": type(estimator).__name__,
        "cli_estimator": estimator_name,
        **spec.settings,
        "solver": solver,
        "setting": config.setting,
        "unknowns": unknowns,
        "observation_layout": config.observation_layout,
        "parametrisation": param,
        "outer_optimizer": "adam",
        "outer_lr": lr,
        "adam_b1": outer.b1,
        "adam_b2": outer.b2,
        "outer_steps": num_outer_steps,
        "final_lr_fraction": outer.final_lr_fraction,
        "num_observations": config.num_observations,
        "noise_level": config.noise_level,
        "data_source": task.data_source,
        "init_scan": config.init_scan if solver == "spectral" else 0,
        "stop_below": config.stop_below,
        "deviation": _deviation(config, solver),
        "memory_measure": "peak_rss",
        "dtype": str(phi.dtype),
    }
    if solver == "spectral":
        settings.update(
            num_points=task.spectral.num_points,
            dt=task.spectral.dt,
            dealias=task.spectral.dealias,
            basis="chebyshev" if eq.boundary == "dirichlet" else "fourier",
            boundary=eq.boundary,
            time_stepper="ETDRK4",
            grid=[len(task.t), len(task.x)],
            solves_per_step=per_step,
            initial_scan_solves=scan_calls,
        )
    else:
        settings.update(dataclasses.asdict(config.pinn))
    dataset = f"{task.equation}-{task.data_source}"
    return make_record(
        benchmark="pde",
        task=task.equation,
        dataset=dataset,
        config=config.name,
        estimator=spec.record_name,
        settings=settings,
        seed=seed,
        metrics=metrics,
        wall_time_s=wall,
        peak_memory_bytes=peak_rss_bytes(),
    )


def noise_floor_record(config: BenchConfig, task: Task, seed: int):
    """The Cramér–Rao floor of the relative coefficient error for the observations ``run_one`` would draw with
    ``seed`` (same points, same noise level), as a record with estimator ``NoiseFloor``.

    Metrics: ``relative_coefficient_error`` = the expected largest relative error over the unknowns of any
    unbiased estimator (:mod:`.information`), ``lambda1/2_relative_error`` for two unknowns, and the relative
    standard deviations. Raises ``ValueError`` for noise-free settings (no floor).
    """
    from fg2u_bench_pde.information import noise_floor

    if not config.noise_level > 0:
        raise ValueError(
            "noise_floor needs noisy observations: pass --noise LEVEL (e.g. 0.01); exact data have no floor"
        )
    eq = get_equation(task.equation)
    unknowns = config.unknowns
    obs = draw_observations(config, task, seed)
    start = time.perf_counter()
    floor = noise_floor(eq, task, obs, unknowns, config.noise_level)
    metrics = {
        "relative_coefficient_error": floor.expected_max_relative_error,
        "coefficient_relative_std": float(floor.relative_std[-1]),
        "target_coefficient": task.target_coefficient,
    }
    if unknowns == 2:
        metrics.update(
            lambda1_relative_error=float(floor.expected_relative_error[0]),
            lambda2_relative_error=float(floor.expected_relative_error[1]),
            lambda1_relative_std=float(floor.relative_std[0]),
        )
    settings = {
        "kind": "Cramér–Rao bound of the least-squares fit, linearised at the true coefficients (not a method)",
        "setting": config.setting,
        "unknowns": unknowns,
        "observation_layout": config.observation_layout,
        "num_observations": config.num_observations,
        "noise_level": config.noise_level,
        "data_source": task.data_source,
        "solver": "spectral",
        "num_points": task.spectral.num_points,
        "dt": task.spectral.dt,
        "grid": [len(task.t), len(task.x)],
    }
    return make_record(
        benchmark="pde",
        task=task.equation,
        dataset=f"{task.equation}-{task.data_source}",
        config=config.name,
        estimator="NoiseFloor",
        settings=settings,
        seed=seed,
        metrics=metrics,
        wall_time_s=time.perf_counter() - start,
        peak_memory_bytes=peak_rss_bytes(),
    )


def _scan_start(config: BenchConfig, problem, eq, param: str, c_drawn: float, to_phi=None, timings=None) -> float:
    """The best of ``c_drawn`` and ``init_scan`` log-spaced coefficients over the paper's initial range.

    ``to_phi(c)`` maps a coefficient to φ (default: the 0-d φ of ``param``; the two-unknown runs scan c with
    λ₁ at its start value)."""
    hi = eq.paper_init_range[1]
    lo_c, hi_c = (
        float(coefficient_from_phi(v, eq.paper_parametrisation)) for v in (hi * config.init_floor_fraction, hi)
    )
    candidates = np.concatenate([[c_drawn], np.geomspace(lo_c, hi_c, config.init_scan)])
    to_phi = to_phi or (lambda c: jnp.asarray(phi_from_coefficient(c, param), dtype=jnp.result_type(float)))
    phis = jnp.stack([to_phi(c) for c in candidates])
    mapped = jax.jit(lambda ps: jax.lax.map(lambda p: problem.objective(p, problem.data), ps))
    compiled = mapped.lower(phis).compile()
    tic = time.perf_counter()
    losses = np.asarray(compiled(phis))
    if timings is not None:
        timings["scan_seconds"] = time.perf_counter() - tic
    losses = np.where(np.isfinite(losses), losses, np.inf)
    if not np.any(np.isfinite(losses)):
        raise UnstableSettingError(
            f"{eq.name}: every initial-scan solve was NaN/inf (coefficients "
            f"{lo_c:.3g}…{hi_c:.3g}); check the spectral settings"
        )
    return float(candidates[int(np.argmin(losses))])


def _label(r) -> str:
    st = r.settings
    if r.estimator == "FG2U_ZO":
        d = st.get("directions", "")
        return f"ZO {st.get('scheme', '?')[:3]} " + (
            "quad" + d[len("quadrature") :]
            if d.startswith("quadrature")
            else f"b={st.get('num_directions', 1)}" + ("o" if d == "orthogonal" else "")
        )
    return r.estimator


def format_table(records) -> str:
    """Mean ± std over seeds per (equation, estimator, setting, noise, data, scan, steps): relative
    coefficient error (%; the largest over the unknowns, and λ₁/λ₂ separately for two unknowns), solution
    error, median solver calls to 1 % / 0.1 % error and the published number: the paper's noise-free
    FG²U-ZO error (``paper`` setting) or Raissi et al.'s PINN λ₁ / λ₂ errors (``raissi`` setting)."""
    groups: dict = {}
    for r in records:
        st = r.settings
        key = (
            r.task,
            _label(r),
            st.get("setting", "?"),
            float(st.get("noise_level", 0.0)),
            st.get("data_source", "?"),
            int(st.get("init_scan", 0)),
            int(st.get("outer_steps", 0)),
        )
        groups.setdefault(key, []).append(r)
    header = (
        f"{'equation':<11} {'estimator':<13} {'setting':<7} {'noise':>5} {'data':<9} {'scan':>4} {'steps':>5} "
        f"{'seeds':>5} {'coef. error %':>20} {'λ1 / λ2 error %':>19} {'rel. L2 of u':>10} "
        f"{'calls<1%':>8} {'calls<.1%':>9} {'time s':>7} {'published %':>14}"
    )
    lines = [header, "-" * len(header)]
    for (task, est, setting, noise, source, scan, steps), rs in sorted(groups.items()):
        ce = np.array([r.metrics["relative_coefficient_error"] for r in rs]) * 100
        l2 = np.array([r.metrics.get("relative_l2_error", math.nan) for r in rs])
        wt = np.mean([r.wall_time_s for r in rs])
        calls = [np.median([r.metrics.get(f"solver_calls_to_{k}", math.nan) for r in rs]) for k in ("1pct", "0.1pct")]
        if "lambda1_relative_error" in rs[0].metrics:
            l1 = 100 * np.mean([r.metrics["lambda1_relative_error"] for r in rs])
            l2_ = 100 * np.mean([r.metrics["lambda2_relative_error"] for r in rs])
            lam = f"{l1:.2g} / {l2_:.2g}"
        else:
            lam = "–"
        if setting == "raissi":
            l1p, l2p = RAISSI_PINN_ERROR_PCT.get((task, noise), (None, None))
            paper = f"{l1p if l1p is not None else '–'} / {l2p if l2p is not None else '–'}"
        else:
            fitted = rs[0].settings.get("solver") == "spectral" and rs[0].estimator != "NoiseFloor"
            paper = PAPER_ZO_ERROR_PCT.get(task) if fitted else None
        lines.append(
            f"{task:<11} {est:<13} {setting:<7} {noise:>5.2g} {source:<9} {scan:>4} {steps:>5} {len(rs):>5} "
            f"{ce.mean():>10.3g} ± {ce.std():<7.2g} {lam:>19} {l2.mean():>10.2e} "
            f"{calls[0]:>8.0f} {calls[1]:>9.0f} {wt:>7.1f} {'–' if paper is None else paper:>14}"
        )
    return "\n".join(lines)


def write_records(records, out_dir, config_name: str) -> Path:
    return append_records(Path(out_dir) / f"{config_name}.jsonl", records)
