"""fg2u.experiment.memory: the peak-RSS growth of a call in a fresh interpreter is the call's own, whatever the
size of the process that starts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fg2u.experiment.memory import measure_in_subprocess

BUILDER = """
def build(mib):
    def call():
        block = bytearray(mib * 2**20)
        for i in range(0, len(block), 4096):  # touch every page: resident
            block[i] = 1
        return len(block)
    return call, None, {"mib": mib}
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS reset needs Linux /proc")
def test_a_child_of_a_large_parent_reports_its_own_peak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "memory_builder_probe.py").write_text(BUILDER)
    monkeypatch.syspath_prepend(str(tmp_path))  # the child's PYTHONPATH is this sys.path
    parent = bytearray(300 * 2**20)  # the parent is resident with 300 MiB when it forks the child
    for i in range(0, len(parent), 4096):
        parent[i] = 1
    measured = measure_in_subprocess("memory_builder_probe:build", {"mib": 40})
    grown = measured["peak_rss_growth_bytes"] / 2**20
    # 40 MiB of touched pages (mapped individually above the 64 KiB mmap threshold), give or take 1 MiB of
    # interpreter pages freed or touched around the call (measured: 39.96); getrusage's ru_maxrss would report
    # the parent's 300 MiB inherited at exec
    assert 39 <= grown <= 48, grown
    assert measured["peak_reset"] is True and measured["info"] == {"mib": 40}
    del parent
