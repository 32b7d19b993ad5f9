"""The benchmark loop: fit the coefficient φ by Adam on meta-gradient estimates; write result records.

``python -m fg2u_bench_pde --config smoke|cpu|paper --equations … --estimators … --seeds …``

Estimators and the inner solver they use:

* ``fg2u_zo_forward``, ``fg2u_zo_central`` — :class:`fg2u.jax.FG2U_ZO` on the spectral solver (black box);
* ``fg2u`` (:class:`fg2u.jax.FG2U`), ``rgu`` (:class:`fg2u.jax.RGU`), ``trgu`` (:class:`fg2u.jax.TRGU`,
  truncation ``K = ⌈trgu_truncation_fraction·T⌉``) — on the PINN inner problem.

Observations come from the reference files (``--data-source reference``; the target coefficient is then
the one the file was made with) or from our spectral solver at the true coefficient
(``--data-source solver``; no data folder needed).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fg2u.records import append_records, make_record, peak_rss_bytes
from fg2u_bench_pde.configs import BenchConfig, default_grid
from fg2u_bench_pde.equations import (
    EQUATIONS,
    UnstableSettingError,
    coefficient_from_phi,
    get_equation,
    phi_from_coefficient,
)
from fg2u_bench_pde.observations import sample_observations
from fg2u_bench_pde.pinn import pinn_prediction, pinn_problem
from fg2u_bench_pde.problems import spectral_prediction, spectral_problem
from fg2u_bench_pde.reference import load_reference
from fg2u_bench_pde.spectral import SpectralSettings, check_solution

__all__ = ["ESTIMATORS", "PAPER_RESULTS", "Task", "build_task", "make_estimator", "run_one", "format_table"]

ESTIMATORS = {
    "fg2u_zo_forward": "spectral",
    "fg2u_zo_central": "spectral",
    "fg2u": "pinn",
    "rgu": "pinn",
    "trgu": "pinn",
}
DATA_SOURCES = ("reference", "solver")
# The paper's Fig. 2 / Table F.3: relative coefficient error of FG²U-ZO + numerical solver ≈ 1–3 %.
PAPER_RESULTS = {"spectral": "≈1–3 %", "pinn": "n/a"}


@dataclasses.dataclass(frozen=True)
class Task:
    """One equation's data: the solution grid, the ground truth on it, and the target coefficient."""

    equation: str
    x: np.ndarray  # (n_x,)
    t: np.ndarray  # (n_t,)
    u: np.ndarray  # (n_t, n_x) ground truth
    target_coefficient: float
    data_source: str
    spectral: SpectralSettings


def build_task(config: BenchConfig, equation: str, data_source: str, data_dir=None) -> Task:
    """Loads or computes the ground truth of ``equation`` on its grid (cut as the config says)."""
    eq = get_equation(equation)
    if data_source not in DATA_SOURCES:
        raise ValueError(f"data_source must be one of {DATA_SOURCES}, got {data_source!r}")
    if equation not in config.spectral:
        raise ValueError(f"config {config.name!r} has no settings for equation {equation!r}")
    sc = config.spectral[equation]
    if data_source == "reference":
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
        u = np.asarray(spectral_prediction(eq, target, settings, x))
        check_solution(u, eq, target, settings)
    else:
        u = u[:n_t][:, keep]
    return Task(equation, np.asarray(x), np.asarray(t), np.asarray(u), float(target), data_source, settings)


def make_estimator(name: str, config: BenchConfig):
    """The ``fg2u.jax`` estimator called ``name`` with the config's settings."""
    import fg2u.jax as fj

    if name == "fg2u_zo_forward":
        return fj.FG2U_ZO(num_directions=config.num_directions, eps=config.eps, scheme="forward")
    if name == "fg2u_zo_central":
        return fj.FG2U_ZO(num_directions=config.num_directions, eps=config.eps, scheme="central")
    if name == "fg2u":
        return fj.FG2U(num_directions=config.num_directions)
    if name == "rgu":
        return fj.RGU()
    if name == "trgu":
        return fj.TRGU(truncation=max(1, math.ceil(config.trgu_truncation_fraction * config.pinn.inner_steps)))
    raise ValueError(f"unknown estimator {name!r}; choose from {sorted(ESTIMATORS)}")


def initial_coefficient(config: BenchConfig, equation: str, seed: int) -> float:
    """c₀ from φ_paper ~ U[hi·floor, hi] in the paper's parametrisation (see :mod:`.configs`)."""
    eq = get_equation(equation)
    hi = eq.paper_init_range[1]
    rng = np.random.default_rng([seed, sorted(EQUATIONS).index(equation), 7])
    phi_paper = rng.uniform(hi * config.init_floor_fraction, hi)
    return float(coefficient_from_phi(phi_paper, eq.paper_parametrisation))


def _estimator_settings(estimator) -> dict:
    return {"estimator_class": type(estimator).__name__, **{
        k: v for k, v in dataclasses.asdict(estimator).items() if isinstance(v, (int, float, str, bool, type(None)))
    }}


def run_one(
    config: BenchConfig,
    task: Task,
    estimator_name: str,
    seed: int,
    *,
    progress: Callable[[Any], Any] | None = None,
    estimator=None,
):
    """Fits φ for one (equation, estimator, seed); returns a :class:`fg2u.records.ResultRecord`.

    Raises :class:`UnstableSettingError` naming the setting when a loss, φ or the solution turns NaN/inf or
    the coefficient non-positive.
    """
    if estimator_name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator_name!r}; choose from {sorted(ESTIMATORS)}")
    solver = ESTIMATORS[estimator_name]
    eq = get_equation(task.equation)
    param = config.parametrisation_for(task.equation)
    estimator = estimator if estimator is not None else make_estimator(estimator_name, config)
    obs = sample_observations(task.x, task.t, task.u, num_points=config.num_observations,
                              noise_level=config.noise_level, seed=seed)
    if solver == "spectral":
        problem = spectral_problem(eq, task.spectral, param, obs)
        outer = config.outer
    else:
        problem = pinn_problem(eq, config.pinn, param, obs, collocation_seed=seed)
        outer = config.pinn_outer
    lr = outer.lr[task.equation]
    num_outer_steps = outer.steps_for(task.equation)
    schedule = (optax.constant_schedule(lr) if outer.final_lr_fraction >= 1.0
                else optax.cosine_decay_schedule(lr, num_outer_steps, alpha=outer.final_lr_fraction))
    optimizer = optax.adam(schedule, b1=outer.b1, b2=outer.b2)

    c_drawn = initial_coefficient(config, task.equation, seed)
    start = time.perf_counter()
    c0 = c_drawn
    if config.init_scan > 0 and solver == "spectral":
        c0 = _scan_start(config, problem, eq, param, c_drawn)
    phi = jnp.asarray(phi_from_coefficient(c0, param), dtype=jnp.result_type(float))
    opt_state = optimizer.init(phi)

    @jax.jit
    def meta_step(problem, phi, opt_state, key):
        grad, aux = estimator(problem, phi, key)
        updates, opt_state = optimizer.update(grad, opt_state, phi)
        return optax.apply_updates(phi, updates), opt_state, aux.outer_loss, grad

    def describe(step: int, value) -> str:
        return (f"{task.equation} with {estimator_name} (seed {seed}, config {config.name}, parametrisation "
                f"{param}, outer lr {lr:g}) at outer step {step}: {value}; solver: "
                + (task.spectral.describe() if solver == "spectral" else f"PINN {config.pinn}"))

    key = jax.random.PRNGKey(seed)
    steps = range(num_outer_steps)
    iterator = progress(steps) if progress is not None else steps
    losses = []
    for step in iterator:
        new_phi, opt_state, loss, grad = meta_step(problem, phi, opt_state, jax.random.fold_in(key, step))
        if not (np.isfinite(float(loss)) and np.isfinite(float(grad)) and np.isfinite(float(new_phi))):
            c = float(coefficient_from_phi(phi, param))
            raise UnstableSettingError(describe(step, f"loss={float(loss)!r}, meta-gradient={float(grad)!r} "
                                                      f"at {eq.coefficient_name}={c:.6g} (NaN/inf: the solve "
                                                      "blew up or the coefficient left (0, ∞))"))
        phi = new_phi
        c = float(coefficient_from_phi(phi, param))
        if not c > 0:
            raise UnstableSettingError(describe(step, f"{eq.coefficient_name}={c!r} is not positive; use "
                                                      "the 'log' parametrisation or a smaller outer lr"))
        losses.append(float(loss))
        if hasattr(iterator, "set_postfix"):
            iterator.set_postfix({eq.coefficient_name: f"{c:.5g}", "loss": f"{float(loss):.3e}"})

    coefficient = float(coefficient_from_phi(phi, param))
    if solver == "spectral":
        final_loss = float(jax.jit(problem.objective)(phi, problem.data))
        prediction = np.asarray(spectral_prediction(eq, coefficient, task.spectral, task.x))
        check_solution(prediction, eq, coefficient, task.spectral)
    else:
        from fg2u.jax import unroll

        state = jax.jit(unroll)(problem, phi)
        final_loss = float(problem.outer_loss(state, phi, problem.outer_batch))
        prediction = np.asarray(pinn_prediction(state.params, eq, task.t, task.x))
    wall = time.perf_counter() - start
    if not np.all(np.isfinite(prediction)) or not np.isfinite(final_loss):
        raise UnstableSettingError(describe(num_outer_steps, "the final prediction or loss is NaN/inf"))
    metrics = {
        "relative_coefficient_error": abs(coefficient - task.target_coefficient) / task.target_coefficient,
        "relative_l2_error": float(np.linalg.norm(prediction - task.u) / np.linalg.norm(task.u)),
        "final_outer_loss": final_loss,
        "coefficient": coefficient,
        "initial_coefficient": c0,
        "drawn_initial_coefficient": c_drawn,
        "target_coefficient": task.target_coefficient,
    }
    settings = {
        **_estimator_settings(estimator),
        "solver": solver,
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
        "memory_measure": "peak_rss",
        "dtype": str(phi.dtype),
    }
    if solver == "spectral":
        settings.update(num_points=task.spectral.num_points, dt=task.spectral.dt, dealias=task.spectral.dealias,
                        time_stepper="ETDRK4", grid=[len(task.t), len(task.x)])
    else:
        settings.update(dataclasses.asdict(config.pinn))
    return make_record(
        benchmark="pde",
        task=task.equation,
        dataset=f"{task.equation}-{task.data_source}",
        config=config.name,
        estimator=estimator_name,
        settings=settings,
        seed=seed,
        metrics=metrics,
        wall_time_s=wall,
        peak_memory_bytes=peak_rss_bytes(),
    )


def _scan_start(config: BenchConfig, problem, eq, param: str, c_drawn: float) -> float:
    """The best of ``c_drawn`` and ``init_scan`` log-spaced coefficients over the paper's initial range."""
    hi = eq.paper_init_range[1]
    lo_c, hi_c = (float(coefficient_from_phi(v, eq.paper_parametrisation))
                  for v in (hi * config.init_floor_fraction, hi))
    candidates = np.concatenate([[c_drawn], np.geomspace(lo_c, hi_c, config.init_scan)])
    phis = jnp.asarray([phi_from_coefficient(c, param) for c in candidates], dtype=jnp.result_type(float))
    losses = np.asarray(jax.jit(jax.lax.map, static_argnums=0)(
        lambda p: problem.objective(p, problem.data), phis))
    losses = np.where(np.isfinite(losses), losses, np.inf)
    if not np.any(np.isfinite(losses)):
        raise UnstableSettingError(f"{eq.name}: every initial-scan solve was NaN/inf (coefficients "
                                   f"{lo_c:.3g}…{hi_c:.3g}); check the spectral settings")
    return float(candidates[int(np.argmin(losses))])


def format_table(records) -> str:
    """Mean ± std over seeds of the relative coefficient error (%) and solution error per
    (equation, estimator), next to the paper's figure."""
    groups: dict = {}
    for r in records:
        key = (r.task, r.estimator, r.settings.get("data_source", "?"), int(r.settings.get("init_scan", 0)),
               int(r.settings.get("outer_steps", 0)))
        groups.setdefault(key, []).append(r)
    header = (f"{'equation':<11} {'estimator':<16} {'data':<9} {'scan':>4} {'steps':>5} {'seeds':>5} "
              f"{'coef. error %':>20} "
              f"{'rel. L2 of u':>20} {'time s':>8} {'paper':>8}")
    lines = [header, "-" * len(header)]
    for (task, est, source, scan, steps), rs in sorted(groups.items()):
        ce = np.array([r.metrics["relative_coefficient_error"] for r in rs]) * 100
        l2 = np.array([r.metrics["relative_l2_error"] for r in rs])
        wt = np.mean([r.wall_time_s for r in rs])
        lines.append(f"{task:<11} {est:<16} {source:<9} {scan:>4} {steps:>5} {len(rs):>5} "
                     f"{ce.mean():>10.3g} ± {ce.std():<7.2g} "
                     f"{l2.mean():>10.3e} ± {l2.std():<7.1e} {wt:>8.1f} {PAPER_RESULTS[ESTIMATORS[est]]:>8}")
    return "\n".join(lines)


def write_records(records, out_dir, config_name: str) -> Path:
    return append_records(Path(out_dir) / f"{config_name}.jsonl", records)
