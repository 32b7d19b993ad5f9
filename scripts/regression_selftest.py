#!/usr/bin/env python
"""Planted-fault self-test of the CI regression gate (what ``nox -s regression_selftest`` runs).

The gate is only worth its name if it fails on real breakage. This script copies the source tree into a
temporary folder, makes baselines there from the clean code (the vision gradient check and the core's
small memory benchmark: ``scripts/regression.py --only vision core`` with ``--gradient-check-only``), checks
that the clean code passes against them, then plants each fault of :data:`FAULTS` — one at a time, by an
exact text replacement in one source file (the script fails if the text is not found, so a refactor cannot
silently disarm a fault) — and asserts that the gate exits 1 naming the metric (and, where given, the
estimator) that must catch it.

    python scripts/regression_selftest.py            # every fault
    python scripts/regression_selftest.py --keep DIR # keep the copies and logs in DIR

Exit 0 when the clean copy passes and every fault is caught; 1 otherwise, with the gate's output.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_JAX = "packages/core/src/fg2u/jax"


@dataclasses.dataclass(frozen=True)
class Fault:
    """A fault planted by replacing ``old`` with ``new`` in ``path``; caught when a failing row names ``metric``
    for ``estimator`` (``""``: any)."""

    name: str
    path: str
    old: str
    new: str
    metric: str
    estimator: str = ""


FAULTS = (
    Fault(
        "sign flip of FG2U's estimate",
        f"{_JAX}/forward.py",
        "total, loss = tangent_forward_sum(problem, phi, directions, self.chunk_size, 1.0 / b)",
        "total, loss = tangent_forward_sum(problem, phi, directions, self.chunk_size, -1.0 / b)",
        "grad_projection",
        "FG2U",
    ),
    Fault(
        "FG2U divides by b twice (wrong 1/b scale)",
        f"{_JAX}/forward.py",
        "total, loss = tangent_forward_sum(problem, phi, directions, self.chunk_size, 1.0 / b)",
        "total, loss = tangent_forward_sum(problem, phi, directions, self.chunk_size, 1.0 / (b * b))",
        "grad_norm_ratio",
        "FG2U",
    ),
    Fault(
        "directions reused across chunks",
        f"{_JAX}/_tangent.py",
        "indices = jnp.arange(n * c).reshape(n, c)",
        "indices = jnp.tile(jnp.arange(c), n).reshape(n, c)",
        "grad_mse_ratio",
        "FG2U",
    ),
    Fault(
        "chunk_size ignored (all directions at once)",
        f"{_JAX}/_tangent.py",
        "c = b if chunk_size is None else min(int(chunk_size), b)",
        "c = b",
        "memory_xla_temp_bytes",
        "FG2U",
    ),
    Fault(
        "a NaN in RGU's meta-gradient",
        f"{_JAX}/reverse.py",
        'return _value_and_grad("RGU", meta_objective(problem), phi, self.check_finite, problem)',
        'grad, aux = _value_and_grad("RGU", meta_objective(problem), phi, self.check_finite, problem)\n'
        '        return jax.tree_util.tree_map(lambda g: g * float("nan"), grad), aux',
        "grad_projection",
        "",
    ),
    Fault(
        "truncation off by one",
        f"{_JAX}/reverse.py",
        "k = min(self.truncation, num_steps)",
        "k = min(self.truncation - 1, num_steps)",
        "grad_projection",
        "TRGU",
    ),
)


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc", ".pytest_cache")
    for part in ("packages", "scripts"):
        shutil.copytree(REPO / part, dest / part, ignore=ignore)
    shutil.copy2(REPO / "noxfile.py", dest / "noxfile.py")


def _env(root: Path) -> dict[str, str]:
    sources = [str(p) for p in sorted((root / "packages").glob("*/src"))]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(sources + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["FG2U_VISION_JAX_CACHE"] = "off"  # no executable compiled from the clean code may serve a fault
    return env


def _gate(root: Path, baselines: Path, log: Path, *, update: bool = False) -> tuple[int, str]:
    command = [
        sys.executable,
        str(root / "scripts" / "regression.py"),
        "--only",
        "vision",
        "core",
        "--bench-args",
        "vision=--gradient-check-only --estimators rgu rgu_checkpointed fg2u trgu hessian_free",
        "--seeds",
        "0",
        "--baselines",
        str(baselines),
        "--repo-root",
        str(root),
        "--results",
        str(root / "results"),
        "--quiet",
    ] + (["--update-baselines"] if update else [])
    done = subprocess.run(command, cwd=root, env=_env(root), capture_output=True, text=True, timeout=3600)
    output = done.stdout + done.stderr
    log.write_text(output, encoding="utf-8")
    return done.returncode, output


def _plant(root: Path, fault: Fault) -> None:
    path = root / fault.path
    text = path.read_text(encoding="utf-8")
    if text.count(fault.old) != 1:
        raise SystemExit(
            f"fault {fault.name!r}: the text to replace occurs {text.count(fault.old)} times in {fault.path} "
            f"(expected once): {fault.old!r} — update scripts/regression_selftest.py to the code"
        )
    path.write_text(text.replace(fault.old, fault.new), encoding="utf-8")


def _caught(output: str, fault: Fault) -> bool:
    for line in output.splitlines():
        status = line.split(" ", 1)[0]
        if status not in ("REGRESSION", "MISSING", "changed"):
            continue
        estimator_ok = not fault.estimator or re.search(rf"/{re.escape(fault.estimator)} ", line + " ")
        if estimator_ok and f" {fault.metric} " in f" {line} ":
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, default=None, help="keep the copies and the gate's logs here")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="fg2u-selftest-"))
    work.mkdir(parents=True, exist_ok=True)
    clean = work / "clean"
    shutil.rmtree(clean, ignore_errors=True)
    _copy_tree(clean)
    baselines = work / "baselines"
    shutil.rmtree(baselines, ignore_errors=True)
    start = time.perf_counter()
    code, output = _gate(clean, baselines, work / "baselines.log", update=True)
    if code != 0:
        print(output[-4000:])
        print("selftest: FAILED: could not make baselines from the clean copy")
        return 1
    code, output = _gate(clean, baselines, work / "clean.log")
    if code != 0:
        print(output[-4000:])
        print("selftest: FAILED: the clean copy does not pass against its own baselines")
        return 1
    print(f"clean copy passes against its own baselines ({time.perf_counter() - start:.0f} s)", flush=True)
    missed = []
    for i, fault in enumerate(FAULTS):
        root = work / f"fault{i}"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(clean, root)
        _plant(root, fault)
        tic = time.perf_counter()
        code, output = _gate(root, baselines, work / f"fault{i}.log")
        caught = code == 1 and _caught(output, fault)
        verdict = "caught" if caught else "MISSED"
        where = f"{fault.estimator} " if fault.estimator else ""
        print(f"{verdict}: {fault.name} ({where}{fault.metric}; exit {code}; {time.perf_counter() - tic:.0f} s)")
        if not caught:
            missed.append(fault.name)
            print("\n".join(output.splitlines()[-30:]))
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    if missed:
        print(f"selftest: FAILED: the gate missed {len(missed)} planted fault(s): {', '.join(missed)}")
        return 1
    print(f"selftest: passed: every one of the {len(FAULTS)} planted faults fails the gate, naming its metric")
    return 0


if __name__ == "__main__":
    sys.exit(main())
