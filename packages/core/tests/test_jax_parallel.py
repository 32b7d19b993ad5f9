"""DirectionParallel over 4 simulated CPU devices equals the single-device estimate (fg2u.jax.parallel).

The device count must be set before JAX starts, so the computation runs in a subprocess
(tests/scripts/jax_direction_parallel.py).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")

SCRIPT = Path(__file__).parent / "scripts" / "jax_direction_parallel.py"
EPS = float(np.finfo(np.float64).eps)  # the worker runs in float64
B = 8


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("mesh") / "result.json"
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, timeout=300)
    return json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fg2u", "zo"])
def test_sharded_equals_single_device(result, name):
    assert result["num_devices"] == 4
    r = result[name]
    for leaf in ("a", "b"):
        single, sharded = np.array(r["single"][leaf]), np.array(r["sharded"][leaf])
        per_device = np.array(r["per_device"][leaf])
        # the same b terms summed in another order (4 partial means of 2): ≤ b·eps·max|term|, with the
        # per-device means bounding the term scale; for ZO each term (L(φ+εv) − L(φ))/ε also carries the
        # rounding of L, ≤ 4·eps·|L|/ε, which differs between the jitted and the eager evaluation
        scale = np.abs(per_device).max() + np.abs(single).max()
        atol = 2 * B * EPS * scale
        if name == "zo":
            atol += 4 * EPS * abs(r["losses"][0]) / result["zo_eps"]
        assert r["dtype"] == "float64"
        np.testing.assert_allclose(sharded, single, rtol=0, atol=atol)
        np.testing.assert_allclose(per_device.mean(axis=0), single, rtol=0, atol=atol)
    np.testing.assert_allclose(*r["losses"], rtol=4 * EPS)


@pytest.mark.parametrize("name", ["fg2u", "zo"])
def test_devices_work_on_different_directions(result, name):
    per_device = np.array(result[name]["per_device"]["a"])
    assert per_device.shape == (4, 5)
    for i in range(4):
        for j in range(i):
            assert not np.allclose(per_device[i], per_device[j]), "two devices produced the same estimate"
