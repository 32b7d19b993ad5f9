"""The core installs and imports alone: `import fg2u` and the experiment layer (spec, records, provenance, loop,
memory, runner) load neither JAX nor PyTorch (nor pandas); nor does making a run's provenance."""

import subprocess
import sys


def test_import_fg2u_loads_no_backend():
    code = (
        "import sys, fg2u, fg2u.problem, fg2u.estimator, fg2u.directions, fg2u.estimators\n"
        "import fg2u.experiment.spec, fg2u.experiment.records, fg2u.experiment.provenance, fg2u.experiment.loop\n"
        "import fg2u.experiment.memory, fg2u.experiment.runner, fg2u.leaderboard.aggregate\n"
        "fg2u.experiment.provenance.start_run([])\n"
        "heavy = sorted(m for m in ('jax', 'jaxlib', 'torch', 'pandas') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "", f"import fg2u loaded {out.stdout.strip()}"
