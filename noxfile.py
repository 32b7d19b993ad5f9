"""Sessions of the fg2u monorepo.

    nox -s tests            the fast tests of every package (≤ 3 minutes on 2 cores; `-m slow` tests left out)
    nox -s tests_all        every test of every package, slow ones included (what CI runs)
    nox -s bench_vision     the main job: dataset condensation on the embedded digits data (cpu config)
    nox -s bench_core       memory / time of every estimator versus unroll depth T and meta-dimension N
    nox -s bench_peers      fg2u versus TorchOpt, higher, jax.grad(lax.scan) and JAXopt on one bi-level problem
    nox -s bench_pde        PDE coefficient discovery (Burgers, Allen-Cahn, KdV)
    nox -s bench_lm         CaMeLS online LM adaptation
    nox -s bench_scaling    direction-parallel FG²U versus number of (simulated) devices
    nox -s leaderboard      renders results/LEADERBOARD.md, results/leaderboard.html and plots
    nox -s leaderboard_screenshot   the same, then results/leaderboard.png from headless Chromium
    nox -s regression       smoke runs compared with results/baselines/ (non-zero exit on regression)
    nox -s regression_selftest   plants six faults in a copy of the code and checks that the gate fails on each
    nox -s lint             ruff (lint + format check) over the monorepo, mypy over packages/core/src
    nox -s docs             the documentation site (mkdocs build --strict into site/)
    nox -s build            sdist + wheel of the four distributions, twine check, core wheel alone in a fresh venv

Arguments after ``--`` go to the underlying command, e.g. ``nox -s bench_pde -- --config smoke``.
torch is pinned to 2.13.0 (a CPU wheel on our machines; an unpinned torch pulls a multi-GB CUDA build).
"""

from __future__ import annotations

import os
import subprocess

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


def _run_tests(session: nox.Session, *marker: str) -> None:
    _install_core(session, "jax,torch,leaderboard,progress,test")
    benches = _existing_benches()
    for name in benches:
        _install_bench(session, name)
    paths = [f"{CORE}/tests"] + [f"{path}/tests" for path in benches.values()]
    session.run("pytest", "-q", "-ra", "--strict-markers", *marker, *paths, *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The fast tests of every package in one environment (tests marked ``slow`` left out: ≤ 3 min on 2 cores)."""
    _run_tests(session, "-m", "not slow")


@nox.session
def tests_all(session: nox.Session) -> None:
    """Every test of every package, the slow ones included (subprocesses, fresh venvs, large statistics): CI."""
    _run_tests(session)


@nox.session
def bench_core(session: nox.Session) -> None:
    """Compiled memory and wall time of every JAX estimator versus T and N; torch peak RSS."""
    _install_core(session, "jax,torch,progress")
    session.run("python", f"{CORE}/benchmarks/bench_core.py", *session.posargs)


# The peers of bench_peers, pinned to the versions the package index has. TorchOpt and JAXopt are installed
# with --no-deps (TorchOpt would otherwise resolve its own torch; JAXopt its own jax/jaxlib), plus their
# small pure-Python dependencies; torch stays torch==2.13.0.
PEERS = ["torchopt==0.7.3", "higher==0.2.1", "jaxopt==0.8.5"]
PEER_DEPS = ["optree==0.20.0", "graphviz==0.21"]


@nox.session
def bench_peers(session: nox.Session) -> None:
    """fg2u (both backends) versus TorchOpt, higher, jax.grad through lax.scan and JAXopt: memory, time,
    agreement; records to results/core/peers.jsonl (default: sizes small and large, T = 10, 100, 1000)."""
    _install_core(session, "jax,torch,progress")
    session.install("--no-deps", *PEERS)
    session.install(*PEER_DEPS)
    session.run("python", f"{CORE}/benchmarks/bench_peers.py", *(session.posargs or ["--out", "results/core"]))


@nox.session
def bench_vision(session: nox.Session) -> None:
    """The main job: dataset condensation (default: cpu config on the embedded digits data)."""
    _install_core(session, "jax,progress")
    _install_bench(session, "vision")
    session.run("python", "-m", "fg2u_bench_vision", *(session.posargs or ["--config", "cpu"]))


@nox.session
def bench_pde(session: nox.Session) -> None:
    """PDE coefficient discovery (default: cpu config, the paper's three equations and 8x8 setting, ground
    truth from our own cached spectral solve: no data folder needed; ``-- --data-dir DIR`` cross-checks
    against the authors' .mat files)."""
    _install_core(session, "jax,progress")
    _install_bench(session, "pde")
    session.run("python", "-m", "fg2u_bench_pde", *(session.posargs or ["--config", "cpu", "--seeds", "0", "1", "2"]))


@nox.session
def bench_lm(session: nox.Session) -> None:
    """CaMeLS online LM adaptation (default: cpu config, sparse-facts stream, seeds 0 1 2 as three concurrent
    one-thread processes appending to the same records file, results/lm/cpu.jsonl; appends are atomic)."""
    _install_core(session, "torch,progress")
    _install_bench(session, "lm")
    if session.posargs:
        session.run("python", "-m", "fg2u_bench_lm", *session.posargs)
        return
    python = os.path.join(session.bin, "python")
    command = [python, "-m", "fg2u_bench_lm", "--config", "cpu", "--no-progress", "--seeds"]
    session.log("seeds 0, 1 and 2 in three processes: " + " ".join(command[1:]) + " S")
    seeds = ("0", "1", "2")
    processes = [subprocess.Popen([*command, seed], env={**os.environ, "OMP_NUM_THREADS": "1"}) for seed in seeds]
    failed = [seed for seed, process in zip(seeds, processes) if process.wait() != 0]
    if failed:
        session.error(f"seed(s) {', '.join(failed)} failed; see their output above")


@nox.session
def bench_scaling(session: nox.Session) -> None:
    """Direction-parallel FG²U versus number of simulated devices / processes."""
    _install_core(session, "jax,torch,progress")
    session.run("python", f"{CORE}/benchmarks/bench_scaling.py", *session.posargs)


@nox.session
def leaderboard(session: nox.Session) -> None:
    """Aggregates results/**/*.jsonl into results/LEADERBOARD.md, results/leaderboard.html and plots."""
    _install_leaderboard(session)
    session.run("python", "-m", "fg2u.leaderboard", "render", "--results", "results", *session.posargs)


def _install_leaderboard(session: nox.Session) -> None:
    # The benchmarks' declarations (entry points `fg2u.benchmarks`: headline metrics, published numbers)
    # only: --no-deps keeps JAX, PyTorch and transformers out of this environment.
    _install_core(session, "leaderboard")
    for path in _existing_benches().values():
        session.install("--no-deps", "-e", path)


@nox.session
def leaderboard_screenshot(session: nox.Session) -> None:
    """Renders the leaderboard, opens results/leaderboard.html in headless Chromium (1400 x 900) and saves
    the first screen as results/leaderboard.png. Needs a system Chromium (apt-get install -y chromium)."""
    _install_leaderboard(session)
    session.run("python", "-m", "fg2u.leaderboard", "screenshot", "--results", "results", *session.posargs)


@nox.session
def regression(session: nox.Session) -> None:
    """Smoke configs + small core memory benchmark versus results/baselines/.

    ``nox -s regression -- --update-baselines`` rewrites the baselines on purpose.
    """
    _install_core(session, "jax,torch,leaderboard,progress")
    for name in _existing_benches():
        _install_bench(session, name)
    # Each benchmark's smoke command comes from its declaration (entry points `fg2u.benchmarks`).
    session.run("python", "scripts/regression.py", *session.posargs)


@nox.session
def regression_selftest(session: nox.Session) -> None:
    """Plants six faults (sign flip, 1/b scale, directions reused across chunks, chunking ignored, a NaN, an
    off-by-one truncation) in a copy of the code and checks that the regression gate fails on each, naming
    the metric (scripts/regression_selftest.py)."""
    _install_core(session, "jax,torch,leaderboard,progress")
    for name in _existing_benches():
        _install_bench(session, name)
    session.run("python", "scripts/regression_selftest.py", *session.posargs)


# Tool versions of the lint / docs / build sessions are pinned so CI results do not drift.
LINT_TOOLS = ["ruff==0.17.6", "mypy==2.4.1"]
DOCS_TOOLS = ["mkdocs==1.6.1", "mkdocs-material==9.8.2", "mkdocstrings==1.0.8", "mkdocstrings-python==2.0.11"]
BUILD_TOOLS = ["build==1.6.1", "twine==7.0.0"]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check + ruff format --check (ruff.toml) over the monorepo; mypy (mypy.ini) over packages/core/src."""
    session.install(*LINT_TOOLS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    _install_core(session, "jax,torch")  # mypy reads the types of numpy, jax, optax and torch
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Builds the documentation site into site/ with warnings as errors; nothing is fetched by the build. Then
    fails if a page shows a raw Sphinx role (``:func:``, ``:class:`` …, which mkdocstrings prints literally) or
    an API page lists an object that did not render (scripts/check_docs_site.py)."""
    session.install(*DOCS_TOOLS)
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})
    args = list(session.posargs)
    flags = [i for i, a in enumerate(args) if a in ("-d", "--site-dir")]
    site = args[flags[-1] + 1] if flags and flags[-1] + 1 < len(args) else "site"
    session.run("python", "scripts/check_docs_site.py", site)


@nox.session
def build(session: nox.Session) -> None:
    """sdist + wheel of every distribution into dist/, ``twine check --strict``, then the core wheel installed
    alone in a fresh virtualenv must import without JAX or PyTorch."""
    import glob
    import shutil

    session.install(*BUILD_TOOLS)
    shutil.rmtree("dist", ignore_errors=True)
    for path in [CORE, *_existing_benches().values()]:
        session.run("python", "-m", "build", "--sdist", "--wheel", "--outdir", "dist", path)
    session.run("twine", "check", "--strict", *sorted(glob.glob("dist/*")))
    venv = os.path.join(session.create_tmp(), "core-only")
    shutil.rmtree(venv, ignore_errors=True)
    session.run("python", "-m", "venv", venv)
    python = os.path.join(venv, "bin", "python")
    (wheel,) = glob.glob("dist/fg2u-*.whl")
    session.run(python, "-m", "pip", "install", "-q", wheel, external=True)
    session.run(
        python,
        "-c",
        "import sys, fg2u; from importlib.metadata import version; "
        "assert not {'jax', 'torch'} & set(sys.modules), 'import fg2u must not import a backend'; "
        "assert version('fg2u') == fg2u.__version__; print('fg2u', fg2u.__version__, 'imports alone')",
        external=True,
    )
