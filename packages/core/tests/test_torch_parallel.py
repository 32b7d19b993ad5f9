"""DirectionParallel over 2 gloo processes on CPU equals the single-process estimate (fg2u.torch.parallel)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).parent / "scripts" / "torch_direction_parallel.py"
FLOAT64_EPS = np.finfo(np.float64).eps


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "result.json"
    subprocess.run([sys.executable, str(SCRIPT), "--world", "2", "--out", str(out)], check=True, timeout=300)
    return json.loads(out.read_text())


@pytest.mark.slow
def test_explicit_directions_match_single_process(result):
    # mean of two means of 4 = mean of 8, up to float64 re-association: ≤ b·eps·Σ|terms|
    single, explicit = np.array(result["single"]), np.array(result["explicit"])
    np.testing.assert_allclose(explicit, single, rtol=0, atol=8 * FLOAT64_EPS * 8 * np.abs(single).max())


def test_sampled_directions_differ_across_ranks_and_average(result):
    d0, d1 = (np.array(d) for d in result["local_directions"])
    assert d0.shape == (4, 5) and not np.array_equal(d0, d1)
    assert set(np.unique(d0)) <= {-1.0, 1.0}
    mean_of_ranks = np.mean([np.array(e) for e in result["local_estimates"]], axis=0)
    np.testing.assert_allclose(result["sampled"], mean_of_ranks, rtol=0, atol=1e-12 * np.abs(mean_of_ranks).max())
    assert np.isfinite(result["loss"])
