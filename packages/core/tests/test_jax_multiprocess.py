"""Direction-parallel FG²U across two real processes joined by ``jax.distributed.initialize`` on localhost
(CPU collectives over gloo), as a multi-host user runs it: both processes must return the single-process
estimate for the same key (tests/scripts/jax_multiprocess.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")

SCRIPT = Path(__file__).parent / "scripts" / "jax_multiprocess.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_give_the_single_process_estimate(tmp_path):
    port, n = _free_port(), 2
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device per process
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                "--process-id",
                str(r),
                "--num-processes",
                str(n),
                "--port",
                str(port),
                "--out",
                str(tmp_path / f"rank{r}.json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for r in range(n)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=240)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for r, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"rank {r} failed:\n{log[-3000:]}"
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(n)]
    for r, res in enumerate(results):
        assert (res["process_index"], res["process_count"], res["global_devices"], res["local_devices"]) == (r, n, n, 1)
        for leaf in ("a", "b"):
            # the same directions (drawn from the global key) split over processes, then pmean: equal to
            # the one-process average up to float64 rounding of the two-level mean
            np.testing.assert_allclose(res["grad"][leaf], res["single_grad"][leaf], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(res["grad"][leaf], results[0]["grad"][leaf], rtol=0, atol=0)
        assert res["loss"] == pytest.approx(res["single_loss"], rel=1e-12)
