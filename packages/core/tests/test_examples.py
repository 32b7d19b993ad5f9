"""Every script in examples/ runs (with small settings) and does what it prints: the meta-gradient
estimate is a valid cosine to its reference and meta-training lowers the outer loss.

Each script runs as a subprocess, as a user would run it, with flags that keep it to a few seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"

SMALL = {
    "weight_decay_jax.py": ["--meta-steps", "6", "--inner-steps", "8", "--directions", "8", "--train-size", "150"],
    "weight_decay_torch.py": [
        "--meta-steps",
        "5",
        "--inner-steps",
        "4",
        "--directions",
        "4",
        "--train-size",
        "100",
        "--hidden",
        "8",
    ],
    "weight_decay_nnx.py": ["--meta-steps", "6", "--inner-steps", "8", "--directions", "8", "--train-size", "150"],
    "token_weights_transformers.py": ["--meta-steps", "4", "--directions", "4"],
    "lr_schedule_jax.py": ["--inner-steps", "10", "--meta-steps", "6", "--directions", "8", "--batch-size", "32"],
    "data_reweighting_jax.py": ["--train-size", "100", "--inner-steps", "8", "--meta-steps", "6", "--directions", "8"],
    "blackbox_ode_zo.py": ["--meta-steps", "8", "--directions", "4", "--meta-lr", "0.1"],
}


def test_every_example_is_exercised():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(SMALL)


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the output:\n{text}"
    return float(match.group(1))


@pytest.fixture(scope="module")
def runs():
    """Starts every example at once (they are independent; on several cores this halves the wall time),
    each single-threaded so that they do not oversubscribe the machine."""
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "OMP_NUM_THREADS": "1",
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    }
    procs = {
        script: subprocess.Popen(
            [sys.executable, str(EXAMPLES / script), *SMALL[script]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for script in SMALL
    }
    yield procs
    for proc in procs.values():  # a failed test must not leave a running example behind
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMALL))
def test_example_runs_and_improves_the_outer_loss(script, runs):
    proc = runs[script]
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    cosine = _number(r"cosine to [^:]+: (-?[\d.]+)", out)
    before = _number(r"outer loss before: ([\d.eE+-]+)", out)
    after = _number(r"outer loss after: ([\d.eE+-]+)", out)
    assert -1.0 - 1e-6 <= cosine <= 1.0 + 1e-6
    # Seeds are fixed, so this is deterministic; with these b and N, E[cos] ≈ √(b/(N + b)) ≥ 0.2.
    assert cosine > 0.0, out
    assert after < before, out


@pytest.mark.slow
def test_docs_quote_the_default_output_of_the_jax_example():
    """docs/examples.md quotes ``python examples/weight_decay_jax.py`` with its defaults: rerun it and compare."""
    page = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    quoted = re.search(r"Output of `python examples/weight_decay_jax.py`.*?```text\n(.*?)```", page, re.S)
    assert quoted, "docs/examples.md no longer quotes the default output of weight_decay_jax.py"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "weight_decay_jax.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    ).stdout
    for line in quoted.group(1).strip().splitlines():
        assert line.strip() in out, f"docs/examples.md quotes {line!r}, the script now prints:\n{out}"
