"""The new-user path: ``pip install "packages/core[jax]"`` (or ``[torch]``) alone in a fresh virtualenv, then
``gradient_quality`` with its defaults (``progress=False``) on a tiny problem.

Each test builds a venv without ``--system-site-packages`` (so nothing of this test environment leaks in:
no tqdm, pandas, flax), installs the core from a copy of packages/core (a non-editable install does not
write build/ or *.egg-info into the checkout) with one extra, checks that tqdm is indeed absent (else the
test would prove nothing about the optional progress bar), and runs ``gradient_quality`` with RGU as its
own reference: RGU against itself has cosine 1 and relative error 0 up to rounding, so the printed
numbers are checked against that, not only the exit status. Slow (a venv and a pip install each, about
20–30 s from the local package caches); skipped only when pip cannot reach any package index.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import venv

import pytest

CORE = pathlib.Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # never unpinned: an unpinned torch pulls a multi-GB CUDA build

JAX_SCRIPT = """
import sys, jax.numpy as jnp, fg2u, fg2u.jax as fj
problem = fg2u.UnrolledProblem(
    init=lambda phi: jnp.zeros(3),
    step=lambda theta, phi, batch: theta - 0.1 * (theta - phi),
    outer_loss=lambda theta, phi, batch: jnp.sum((theta - 1.0) ** 2),
    num_steps=5,
)
rgu, fg = fj.gradient_quality(problem, jnp.array([0.5, 2.0, -1.0]),
                              {"RGU": fj.RGU(), "FG2U": fj.FG2U(num_directions=2)}, num_repeats=2)
print("tqdm" in sys.modules, rgu.cosine_mean, rgu.relative_error_mean, fg.num_repeats)
"""

TORCH_SCRIPT = """
import sys, torch, fg2u, fg2u.torch as ft
problem = fg2u.UnrolledProblem(
    init=lambda phi: torch.zeros(3),
    step=lambda theta, phi, batch: theta - 0.1 * (theta - phi),
    outer_loss=lambda theta, phi, batch: torch.sum((theta - 1.0) ** 2),
    num_steps=5,
)
rgu, fg = ft.gradient_quality(problem, torch.tensor([0.5, 2.0, -1.0]),
                              {"RGU": ft.RGU(), "FG2U": ft.FG2U(num_directions=2)}, num_repeats=2)
print("tqdm" in sys.modules, rgu.cosine_mean, rgu.relative_error_mean, fg.num_repeats)
"""


def _fresh_venv(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A venv without system site packages and a copy of the core's sources to install from."""
    src = tmp_path / "core"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(CORE / name, src / name)
    shutil.copytree(CORE / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    return python, src


def _pip(python: pathlib.Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _install_extra_and_run(tmp_path: pathlib.Path, extra: str, script: str, *pins: str) -> None:
    python, src = _fresh_venv(tmp_path)
    probe = subprocess.run(
        [str(python), "-m", "pip", "download", "--no-deps", "--dest", str(tmp_path / "probe"), "numpy"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if probe.returncode != 0:
        pytest.skip(f"pip cannot reach a package index from this machine: {probe.stderr.strip()[-300:]}")
    install = _pip(python, *pins, f"{src}[{extra}]")
    assert install.returncode == 0, f'pip install "packages/core[{extra}]" failed:\n{install.stderr[-3000:]}'
    has_tqdm = subprocess.run([str(python), "-c", "import tqdm"], capture_output=True).returncode == 0
    assert not has_tqdm, f"the [{extra}] extra pulled in tqdm, so this test no longer checks the tqdm-free path"
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, f"gradient_quality failed with only [{extra}] installed:\n{run.stderr[-3000:]}"
    loaded_tqdm, cosine, rel_error, repeats = run.stdout.split()
    assert loaded_tqdm == "False"
    # RGU is its own reference: identical float32 vectors, so cosine = 1 up to the rounding of ⟨g, g⟩/‖g‖²
    # in float64 (≪ 1e-12) and relative error exactly 0.
    assert float(cosine) == pytest.approx(1.0, abs=1e-12) and float(rel_error) == 0.0 and repeats == "2"


@pytest.mark.slow
def test_gradient_quality_with_only_the_jax_extra(tmp_path: pathlib.Path) -> None:
    _install_extra_and_run(tmp_path, "jax", JAX_SCRIPT)


@pytest.mark.slow
def test_gradient_quality_with_only_the_torch_extra(tmp_path: pathlib.Path) -> None:
    _install_extra_and_run(tmp_path, "torch", TORCH_SCRIPT, TORCH)
