"""Sessions of the fg2u monorepo.

    nox -s tests            every package's tests (core + backends + benchmarks)
    nox -s bench_vision     the main job: dataset condensation on the embedded digits data (cpu config)
    nox -s bench_core       memory / time of every estimator versus unroll depth T and meta-dimension N
    nox -s bench_pde        PDE coefficient discovery (Burgers, Allen-Cahn, KdV)
    nox -s bench_lm         CaMeLS online LM adaptation
    nox -s bench_scaling    direction-parallel FG²U versus number of (simulated) devices
    nox -s leaderboard      renders results/LEADERBOARD.md, results/leaderboard.html and plots
    nox -s regression       smoke runs compared with results/baselines/ (non-zero exit on regression)

Arguments after ``--`` go to the underlying command, e.g. ``nox -s bench_pde -- --config smoke``.
torch is pinned to 2.13.0 (a CPU wheel on our machines; an unpinned torch pulls a multi-GB CUDA build).
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

TORCH = "torch==2.13.0"
CORE = "packages/core"
BENCHES = {
    "vision": "packages/bench-vision",
    "pde": "packages/bench-pde",
    "lm": "packages/bench-lm",
}


def _install_core(session: nox.Session, extras: str) -> None:
    if "torch" in extras:
        session.install(TORCH)
    session.install("-e", f"{CORE}[{extras}]")


def _install_bench(session: nox.Session, name: str) -> None:
    session.install("-e", BENCHES[name])


def _existing_benches() -> dict[str, str]:
    return {name: path for name, path in BENCHES.items() if os.path.exists(os.path.join(path, "pyproject.toml"))}


@nox.session
def tests(session: nox.Session) -> None:
    """All packages' tests in one environment (core with both backends, and every benchmark)."""
    _install_core(session, "jax,torch,leaderboard,progress,test")
    benches = _existing_benches()
    for name in benches:
        _install_bench(session, name)
    paths = [f"{CORE}/tests"] + [f"{path}/tests" for path in benches.values()]
    session.run("pytest", "-q", "-ra", *paths, *session.posargs)


@nox.session
def bench_core(session: nox.Session) -> None:
    """Compiled memory and wall time of every JAX estimator versus T and N; torch peak RSS."""
    _install_core(session, "jax,torch,progress")
    session.run("python", f"{CORE}/benchmarks/bench_core.py", *session.posargs)


@nox.session
def bench_vision(session: nox.Session) -> None:
    """The main job: dataset condensation (default: cpu config on the embedded digits data)."""
    _install_core(session, "jax,progress")
    _install_bench(session, "vision")
    session.run("python", "-m", "fg2u_bench_vision", *(session.posargs or ["--config", "cpu"]))


@nox.session
def bench_pde(session: nox.Session) -> None:
    """PDE coefficient discovery (default: cpu config, all three equations)."""
    _install_core(session, "jax,progress")
    _install_bench(session, "pde")
    session.run("python", "-m", "fg2u_bench_pde", *(session.posargs or ["--config", "cpu"]))


@nox.session
def bench_lm(session: nox.Session) -> None:
    """CaMeLS online LM adaptation (default: cpu config)."""
    _install_core(session, "torch,progress")
    _install_bench(session, "lm")
    session.run("python", "-m", "fg2u_bench_lm", *(session.posargs or ["--config", "cpu"]))


@nox.session
def bench_scaling(session: nox.Session) -> None:
    """Direction-parallel FG²U versus number of simulated devices / processes."""
    _install_core(session, "jax,torch,progress")
    session.run("python", f"{CORE}/benchmarks/bench_scaling.py", *session.posargs)


@nox.session
def leaderboard(session: nox.Session) -> None:
    """Aggregates results/**/*.jsonl into results/LEADERBOARD.md, results/leaderboard.html and plots."""
    _install_core(session, "leaderboard")
    session.run("python", "-m", "fg2u.leaderboard", "render", "--results", "results", *session.posargs)


@nox.session
def regression(session: nox.Session) -> None:
    """Smoke configs + small core memory benchmark versus results/baselines/.

    ``nox -s regression -- --update-baselines`` rewrites the baselines on purpose.
    """
    _install_core(session, "jax,torch,leaderboard,progress")
    for name in _existing_benches():
        _install_bench(session, name)
    # The PDE smoke observations come from our own solver, so the check needs no data folder.
    session.run("python", "scripts/regression.py", "--bench-args", "pde=--data-source solver", *session.posargs)
