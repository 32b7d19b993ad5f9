"""Benchmark configurations: ``smoke`` (seconds, tests/CI), ``cpu`` (full problems, few outer steps),
``paper`` (Table F.3 settings), and the observation settings (:data:`SETTINGS`): ``paper`` (64 points on
an 8 × 8 interior grid, one unknown), ``raissi`` (2,000 random points, two unknowns λ₁, λ₂ for Burgers
and KdV, as in Raissi et al.'s PINN papers) and ``field`` (the Allen–Cahn reaction rate as a field of K
unknowns, 2,000 random points, 1 % noise; :mod:`.field`).

Ground truth without data files (``--data-source solver``, the default): our own solver at the true
coefficients on the ``reference`` discretisation (finer than the one fitted: twice the points or more,
four times the time steps), cached (see :func:`fg2u_bench_pde.reference.solver_reference`).

The solution grid of each equation is the grid of its reference file (``default_grid`` reproduces it
when no data folder is given). The spectral solver writes its output at those times and interpolates
spectrally in x, so observations, the reference and the prediction share one grid.

Initial coefficient: φ_paper is drawn uniformly from the paper's range ``(0, hi]`` *floored at hi/100*
(a draw next to 0 would make Burgers inviscid and the solver unresolved), in the paper's
parametrisation (√ν, √D, δ), and mapped to the coefficient; the run then optimises the configured
parametrisation of that coefficient.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fg2u_bench_pde.equations import PARAMETRISATIONS, get_equation
from fg2u_bench_pde.pinn import PinnSettings

__all__ = [
    "SpectralConfig",
    "OuterConfig",
    "BenchConfig",
    "CONFIGS",
    "SETTINGS",
    "get_config",
    "apply_setting",
    "default_grid",
]


@dataclasses.dataclass(frozen=True)
class SpectralConfig:
    """Spectral discretisation of one equation: ``num_points`` Fourier points, ``substeps`` ETDRK4 steps
    per output interval; ``time_fraction`` < 1 keeps only the first part of the time grid (smoke)."""

    num_points: int
    substeps: int
    time_fraction: float = 1.0
    x_stride: int = 1


@dataclasses.dataclass(frozen=True)
class OuterConfig:
    """Adam on φ: ``lr`` (per equation), cosine decay to ``lr·final_lr_fraction`` over ``steps``
    (``final_lr_fraction=1``: constant, as in the paper), moment decays ``b1``, ``b2``.

    ``b1 = 0.5, b2 = 0.9`` (cpu) instead of Adam's 0.9, 0.999: the meta-gradient shrinks by orders of magnitude between a
    far initial coefficient and the optimum (Burgers: |dL/dlog ν| ≈ 0.08 at ν = 0.1, 1e-3 near ν*); a long
    second-moment memory then makes the steps near the optimum ~50× smaller than ``lr`` and a momentum
    overshoot is never undone (measured: ν stalled 23 % below ν* with b2 = 0.999). With b2 = 0.9 the steps
    are ≈ lr·sign(g) and the heavy-ball oscillation around the optimum scales like lr/(1 − b1)²; b1 = 0.5
    keeps it small enough for the cosine decay to settle within 120 steps (3 % error with b1 = 0.9).
    """

    steps: int | dict
    lr: dict
    final_lr_fraction: float = 1.0
    b1: float = 0.9
    b2: float = 0.999

    def steps_for(self, equation: str) -> int:
        """Outer steps for ``equation`` (``steps`` is one int or a dict per equation)."""
        return int(self.steps[equation] if isinstance(self.steps, dict) else self.steps)


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    name: str
    parametrisation: str  # "log", or "paper" (√ν, √D, δ)
    spectral: dict  # equation -> SpectralConfig
    outer: OuterConfig  # for the spectral (ZO) runs
    pinn: PinnSettings
    pinn_outer: OuterConfig
    reference: dict = dataclasses.field(default_factory=dict)  # equation -> SpectralConfig of the ground truth
    eps: float = 1e-4
    num_directions: int = 1
    distribution: str = "rademacher"
    setting: str = "paper"
    observation_layout: str = "grid"
    num_observations: int = 64
    unknowns: int = 1
    noise_level: float = 0.0
    init_floor_fraction: float = 0.01
    init_scan: int = 0
    trgu_truncation_fraction: float = 0.1
    quadrature_points: int = 12
    quadrature_half_width: float = 5.0
    cost_thresholds: tuple = (0.01, 0.001)
    stop_below: float | None = None  # cost runs only: stop once the coefficient error (an oracle) is below
    baseline_max_solver_calls: int = 1000  # budget of least_squares / nelder_mead (every solver call counted)
    # field setting: at least this many finite-difference Jacobians' worth of calls, 40·(K + 1) (K = 256: 10,280)
    baseline_min_jacobians: int = 40
    fd_step: float | None = None  # finite-difference step of the noisy field variant (FG²U-ZO ε, least squares)

    def parametrisation_for(self, equation: str) -> str:
        if self.parametrisation == "paper":
            return get_equation(equation).paper_parametrisation
        if self.parametrisation not in PARAMETRISATIONS:
            raise ValueError(f"parametrisation must be 'paper' or one of {PARAMETRISATIONS}")
        return self.parametrisation

    def replace(self, **changes) -> BenchConfig:
        return dataclasses.replace(self, **changes)


_PAPER_LR = {"burgers": 1e-2, "allen_cahn": 1e-2, "kdv": 1e-3, "allen_cahn_periodic": 1e-2, "allen_cahn_field": 1e-2}

#: Observation settings: ``paper`` — the (FG)²U paper's 64 points on an 8 × 8 interior grid, one unknown;
#: ``raissi`` — 2,000 random grid points and two unknowns (λ₁ of the nonlinear term and the paper's
#: coefficient), Raissi et al.'s setting for Burgers and KdV.
SETTINGS = {
    "paper": {"observation_layout": "grid", "num_observations": 64, "unknowns": 1},
    "raissi": {"observation_layout": "random", "num_observations": 2000, "unknowns": 2},
    # K unknowns (--field-size, default 16); FG²U / FG²U-ZO with b = 16 directions; no initial scan (it is 1-d)
    "field": {
        "observation_layout": "random",
        "num_observations": 2000,
        "unknowns": 16,
        "noise_level": 0.01,
        "num_directions": 16,
        "init_scan": 0,
    },
}
#: The field setting's equation (:mod:`.field`); the other settings run the paper's equations.
FIELD_EQUATION = "allen_cahn_field"

# Ground truth of the cpu/paper configs (Burgers: N = 2048 moves the N = 1024 solution by < 1e-7; Allen-Cahn
# Chebyshev N = 512 is converged to 6e-11 relative L2, N = 256 with 5 substeps to 6e-6).
_FINE_REFERENCE = {
    "burgers": SpectralConfig(2048, 16),
    "allen_cahn": SpectralConfig(512, 20),
    "kdv": SpectralConfig(512, 20),
    "allen_cahn_periodic": SpectralConfig(512, 20),
    "allen_cahn_field": SpectralConfig(512, 8),
}

CONFIGS: dict[str, BenchConfig] = {
    "smoke": BenchConfig(
        name="smoke",
        parametrisation="log",
        spectral={
            "burgers": SpectralConfig(128, 2, time_fraction=0.2, x_stride=4),
            "allen_cahn": SpectralConfig(128, 2, time_fraction=0.2, x_stride=4),
            "kdv": SpectralConfig(128, 2, time_fraction=0.2, x_stride=4),
            "allen_cahn_periodic": SpectralConfig(128, 2, time_fraction=0.2, x_stride=4),
            "allen_cahn_field": SpectralConfig(64, 1, time_fraction=0.2, x_stride=4),
        },
        reference={
            "burgers": SpectralConfig(256, 4, time_fraction=0.2),
            "allen_cahn": SpectralConfig(192, 4, time_fraction=0.2),
            "kdv": SpectralConfig(256, 4, time_fraction=0.2),
            "allen_cahn_periodic": SpectralConfig(256, 4, time_fraction=0.2),
            "allen_cahn_field": SpectralConfig(128, 2, time_fraction=0.2),
        },
        outer=OuterConfig(
            steps=4,
            lr={"burgers": 0.1, "allen_cahn": 0.1, "kdv": 0.1, "allen_cahn_periodic": 0.1, "allen_cahn_field": 0.1},
        ),
        baseline_max_solver_calls=40,
        baseline_min_jacobians=0,
        pinn=PinnSettings(depth=3, width=8, inner_steps=4, inner_lr=1e-3, batch_size=16),
        pinn_outer=OuterConfig(steps=2, lr={"burgers": 0.1, "allen_cahn": 0.1, "kdv": 0.1, "allen_cahn_periodic": 0.1}),
    ),
    "cpu": BenchConfig(
        name="cpu",
        parametrisation="log",
        spectral={
            "burgers": SpectralConfig(1024, 4),
            "allen_cahn": SpectralConfig(256, 5),
            "kdv": SpectralConfig(256, 5),
            "allen_cahn_periodic": SpectralConfig(256, 5),
            "allen_cahn_field": SpectralConfig(256, 1),
        },
        reference=_FINE_REFERENCE,
        init_scan=32,
        outer=OuterConfig(
            steps={"burgers": 120, "allen_cahn": 120, "kdv": 120, "allen_cahn_periodic": 120, "allen_cahn_field": 1000},
            lr={"burgers": 0.3, "allen_cahn": 0.1, "kdv": 0.1, "allen_cahn_periodic": 0.1, "allen_cahn_field": 0.03},
            final_lr_fraction=1e-3,
            b1=0.5,
            b2=0.9,
        ),
        pinn=PinnSettings(depth=9, width=20, inner_steps=100, inner_lr=1e-3, batch_size=500),
        pinn_outer=OuterConfig(
            steps=20,
            lr={"burgers": 0.05, "allen_cahn": 0.05, "kdv": 0.05, "allen_cahn_periodic": 0.05},
            final_lr_fraction=0.1,
        ),
    ),
    "paper": BenchConfig(
        name="paper",
        parametrisation="paper",
        spectral={
            "burgers": SpectralConfig(1024, 4),
            "allen_cahn": SpectralConfig(384, 5),
            "kdv": SpectralConfig(512, 5),
            "allen_cahn_periodic": SpectralConfig(512, 5),
            "allen_cahn_field": SpectralConfig(256, 1),
        },
        reference=_FINE_REFERENCE,
        outer=OuterConfig(steps=5000, lr=dict(_PAPER_LR)),
        pinn=PinnSettings(depth=9, width=20, inner_steps=1000, inner_lr=1e-3, batch_size=5000),
        pinn_outer=OuterConfig(steps=5000, lr=dict(_PAPER_LR)),
    ),
}


def get_config(name: str) -> BenchConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}")
    return CONFIGS[name]


def apply_setting(config: BenchConfig, name: str) -> BenchConfig:
    """``config`` with the observation setting ``name`` (a key of :data:`SETTINGS`)."""
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}; choose one of {sorted(SETTINGS)}")
    return config.replace(setting=name, **SETTINGS[name])


def default_grid(equation: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, t)`` of the reference file of ``equation`` (used when no reference data is loaded)."""
    if equation == "burgers":
        return np.linspace(-1.0, 1.0, 256), 0.01 * np.arange(100)
    if equation == "kdv":
        return -1.0 + 2.0 * np.arange(512) / 512, 0.005 * np.arange(201)
    if equation in ("allen_cahn", "allen_cahn_periodic"):
        return np.linspace(-1.0, 1.0, 201), 0.01 * np.arange(101)
    if equation == "allen_cahn_field":  # the solver's own periodic grid at N = 256, t ∈ [0, 0.5]
        return -1.0 + 2.0 * np.arange(256) / 256, 0.01 * np.arange(51)
    raise ValueError(f"unknown equation {equation!r}")
