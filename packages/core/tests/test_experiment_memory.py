"""fg2u.experiment.memory: the peak-RSS growth of a call detects a known allocation, in this process and in a
fresh subprocess (builders defined below), and a failing child surfaces as a RuntimeError with its stderr.

Tolerances. An array of N MiB whose pages are all written is N MiB of resident memory, so the true growth is at
least N MiB. The kernel's RSS counters (``statm``, ``VmHWM``) are per-CPU counters read without summing
(Linux >= 6.2): each of the anon, file and shmem counters may lag by its batch, max(32, 2 n) pages, on each of
the n CPUs the process ran on — :data:`SLACK` below, 768 KiB on 2 CPUs (measured: 16–220 KiB under N). On top
come the interpreter's small allocations during the call (well under 1 MiB) and, in this process with glibc's
dynamic mmap threshold, possibly one more heap arena of a few MiB: "less than 4 N" (in this process) and
"less than N + 32 MiB" (the fresh subprocess, whose allocator is pinned) leave room for those while failing a
measure that counted the whole process, the warm-up or the parent's peak.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fg2u.experiment.memory import measure_call, measure_in_subprocess, peak_rss_bytes, reset_peak_rss, rss_bytes

MIB = 2**20
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
SLACK = 3 * max(32, 2 * _CPUS) * _CPUS * os.sysconf("SC_PAGE_SIZE")  # lag of the kernel's RSS counters (above)
_KEPT: list[np.ndarray] = []  # what a warm-up keeps alive (like loaded kernels or an allocator pool)


def _touch(mib: int) -> float:
    """Allocates ``mib`` MiB and writes every page (``np.ones``), then frees it; returns a value of it."""
    array = np.ones(mib * MIB // 8)
    return float(array[-1])


def _needs_peak_reset() -> None:
    if not reset_peak_rss():
        pytest.skip("the kernel's peak-RSS counter cannot be reset here (/proc/self/clear_refs)")


# --------------------------------------------------------------------------------------- in this process
def test_rss_helpers_read_this_process():
    rss, peak = rss_bytes(), peak_rss_bytes()
    assert rss is not None and 0 < rss <= peak + SLACK


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux only: ru_maxrss elsewhere")
def test_a_child_does_not_inherit_its_parents_peak():
    """A parent that peaked at 256 MiB starts a child: the child's peak is its own (tens of MiB), not the
    parent's (``ru_maxrss`` keeps the address space's peak from before ``exec``: 256+ MiB here)."""
    import subprocess
    import sys

    _touch(256)
    code = "from fg2u.experiment.memory import peak_rss_bytes; print(peak_rss_bytes())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert int(done.stdout) < 128 * MIB


def test_measure_call_detects_a_known_allocation():
    _needs_peak_reset()
    result, measured = measure_call(lambda: _touch(64))
    assert result == 1.0 and measured["peak_reset"] is True and measured["seconds"] > 0
    assert 64 * MIB - SLACK <= measured["peak_rss_growth_bytes"] < 4 * 64 * MIB, measured


def test_measure_call_of_nothing_grows_by_little():
    _needs_peak_reset()
    _, measured = measure_call(lambda: None)
    assert measured["peak_rss_growth_bytes"] < 8 * MIB, measured  # one 64 MiB array would be 8x this bound


def test_the_warm_up_is_excluded_from_the_measure():
    """A warm-up that peaks at 128 MiB and keeps 16 MiB alive, then a call of 32 MiB: the growth counts the
    call only (without the peak reset it would be about 128 MiB; without the baseline after the warm-up, 48)."""
    _needs_peak_reset()

    def warmup():
        _touch(128)
        _KEPT.append(np.ones(16 * MIB // 8))

    try:
        _, measured = measure_call(lambda: _touch(32), warmup)
    finally:
        _KEPT.clear()
    assert 32 * MIB - SLACK <= measured["peak_rss_growth_bytes"] < 48 * MIB, measured


# -------------------------------------------------------------------------------------- in a subprocess
def allocating_builder(mib: int):
    """A builder for :func:`measure_in_subprocess`: the call allocates ``mib`` MiB; the warm-up 4 MiB."""
    return (lambda: _touch(mib)), (lambda: _touch(4)), {"mib": mib}


def failing_builder():
    raise ValueError("boom in the builder")


@pytest.fixture
def builder(monkeypatch):
    """``"<this module>:<function>"`` importable by the child: this folder is put on the child's ``sys.path``
    (the child gets this process's ``sys.path``; pytest's importlib mode does not add test folders to it)."""
    here = Path(__file__).resolve()
    monkeypatch.syspath_prepend(str(here.parent))
    return lambda function: f"{here.stem}:{function}"


@pytest.mark.parametrize("mib", [16, 96])
def test_measure_in_subprocess_reports_the_builders_allocation(builder, mib):
    measured = measure_in_subprocess(builder("allocating_builder"), {"mib": mib})
    assert measured["info"] == {"mib": mib} and measured["seconds"] > 0
    if not measured["peak_reset"]:
        pytest.skip("the child could not reset its peak-RSS counter: its warm-up and imports would count")
    assert mib * MIB - SLACK <= measured["peak_rss_growth_bytes"] < (mib + 32) * MIB, measured


def test_a_failing_child_raises_with_its_stderr(builder):
    with pytest.raises(RuntimeError, match=r"(?s)memory measure of .*:failing_builder failed \(exit 1\).*boom in the"):
        measure_in_subprocess(builder("failing_builder"))
    with pytest.raises(RuntimeError, match=r"(?s)failed \(exit 1\).*ModuleNotFoundError.*no_such_module_xyz"):
        measure_in_subprocess("no_such_module_xyz:build")
    with pytest.raises(RuntimeError, match=r"(?s)failed.*TypeError.*unexpected keyword argument 'gib'"):
        measure_in_subprocess(builder("allocating_builder"), {"gib": 1})
