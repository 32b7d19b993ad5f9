#!/usr/bin/env python
"""CI regression check of fg2u (what `nox -s regression` runs).

Runs, into a temporary folder, the smoke command of every installed benchmark (the benchmarks register
through the `fg2u.benchmarks` entry points: `python -c "import fg2u.benchmarks as b; print(b.discover())"`
lists them; a benchmark whose package is not installed is not run and its baselines show `not run`),
prints each command, then compares the records with `results/baselines/` and exits 1 on a regression
(see `fg2u.leaderboard.regression` for the tolerances).

    python scripts/regression.py                      # check
    python scripts/regression.py --update-baselines   # rewrite results/baselines/ on purpose
    python scripts/regression.py --fresh DIR          # compare records already in DIR (no runs)
    python scripts/regression.py --keep DIR           # keep the fresh records in DIR
    python scripts/regression.py --bench-args "NAME=--data-dir DIR"   # extra flags for benchmark NAME

Benchmarks that need data read it from their flag or environment variable; a benchmark command that
fails, or a benchmark plugin that cannot be loaded, makes the check fail.

Paths default to this checkout (`--results <repo>/results`, `--repo-root <repo>`), whatever the current
directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fg2u.leaderboard.regression import main

REPO = Path(__file__).resolve().parent.parent


def _with_defaults(argv: list[str]) -> list[str]:
    names = {a.split("=", 1)[0] for a in argv}
    defaults = []
    if "--results" not in names:
        defaults += ["--results", str(REPO / "results")]
    if "--repo-root" not in names:
        defaults += ["--repo-root", str(REPO)]
    return defaults + argv


if __name__ == "__main__":
    raise SystemExit(main(_with_defaults(sys.argv[1:])))
