"""One peak-memory measure for code that has no compiled-memory analysis (PyTorch, a black-box solver).

:func:`measure_call` measures, in this process, the growth of the peak resident set size during one call,
after a warm-up call that loads kernels and allocator pools: freed heap is returned to the OS
(``malloc_trim(0)``), the kernel's peak counter is reset (``echo 5 > /proc/self/clear_refs``, Linux), and the
result is the peak after the call minus the resident size before it.

:func:`measure_in_subprocess` runs a *builder* ``"package.module:function"`` in a fresh interpreter (so no
configuration inherits another's peak or imports) with one intra-op thread and glibc's mmap threshold fixed
at 64 KiB (``MALLOC_MMAP_THRESHOLD_``: large tensors are mapped and unmapped individually; with glibc's
dynamic threshold they come from a fragmenting heap whose RSS reflects allocation history, tens of MiB off).
The builder is called with the keyword arguments given and returns ``(call, warmup, info)``: the measured
callable, an optional warm-up callable and a JSON-able dict reported back.

The record's :class:`fg2u.experiment.records.Memory` measure is ``"peak_rss_growth"``. JAX code uses XLA's
compiled memory instead (``fg2u.jax.harness.compile_ahead``, measure ``"xla_temp_bytes"``): deterministic.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "MMAP_THRESHOLD",
    "MemoryMeasurement",
    "measure_call",
    "measure_in_subprocess",
    "peak_rss_bytes",
    "rss_bytes",
    "reset_peak_rss",
]

MMAP_THRESHOLD = 65536


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far: ``VmHWM`` of ``/proc/self/status`` (Linux; what
    :func:`reset_peak_rss` resets), else ``getrusage``'s ``ru_maxrss`` (macOS bytes).

    Not ``ru_maxrss`` on Linux: it is the larger of the address space's peak and the peak of the image the
    process replaced at ``exec`` — for a child started by ``subprocess`` that is the forked copy of its
    parent, so a child of a large parent reported the parent's resident size as its own peak (a 50 MiB
    allocation under an 800 MiB parent read as 800 MiB), and clearing the peak could not lower it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def rss_bytes() -> int | None:
    """Current resident set size (``/proc/self/statm``), or None where ``/proc`` is unavailable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def reset_peak_rss() -> bool:
    """Collects garbage, returns freed heap to the OS and resets the kernel's peak-RSS counter; True if reset."""
    gc.collect()
    try:
        import ctypes  # noqa: PLC0415 (only where a C library can be loaded)

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class MemoryMeasurement(dict):
    """What :func:`measure_call` and :func:`measure_in_subprocess` return (a dict, JSON-able):
    ``peak_rss_growth_bytes``, ``seconds`` (of the measured call), ``peak_reset`` (whether the peak counter
    could be reset; if not, the warm-up's peak may dominate) and ``info`` (the builder's)."""


def measure_call(call: Callable[[], Any], warmup: Callable[[], Any] | None = None) -> tuple[Any, MemoryMeasurement]:
    """``(call(), measurement)``: the peak-RSS growth of ``call`` in this process (module docstring)."""
    if warmup is not None:
        warmup()
    reset = reset_peak_rss()
    baseline = rss_bytes() or peak_rss_bytes()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    growth = max(0, peak_rss_bytes() - baseline)
    return result, MemoryMeasurement(peak_rss_growth_bytes=growth, seconds=seconds, peak_reset=reset, info={})


def measure_in_subprocess(
    builder: str, kwargs: Mapping[str, Any] | None = None, *, threads: int = 1, timeout_s: float = 1800
) -> MemoryMeasurement:
    """Measures ``builder(**kwargs)``'s call in a fresh interpreter (module docstring).

    Args:
      builder: ``"package.module:function"``, importable in the child (same ``sys.path``).
      kwargs: JSON-able keyword arguments of the builder.
      threads: intra-op threads (``OMP_NUM_THREADS``, and ``torch.set_num_threads`` when torch is loaded).

    Raises ``RuntimeError`` with the child's error output when it fails.
    """
    command = [
        sys.executable,
        "-m",
        "fg2u.experiment.memory",
        builder,
        "--kwargs",
        json.dumps(dict(kwargs or {})),
        "--threads",
        str(threads),
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD))
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"memory measure of {builder} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return MemoryMeasurement(json.loads(lines[-1]))


def _worker(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fg2u.experiment.memory", description=__doc__.split("\n")[0])
    parser.add_argument("builder", help="package.module:function returning (call, warmup, info)")
    parser.add_argument("--kwargs", default="{}", help="JSON keyword arguments of the builder")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    module_name, _, function = args.builder.partition(":")
    build = getattr(importlib.import_module(module_name), function)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(args.threads)
    call, warmup, info = build(**json.loads(args.kwargs))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(args.threads)
    _, measurement = measure_call(call, warmup)
    measurement["info"] = info
    print(json.dumps(measurement), flush=True)


if __name__ == "__main__":
    _worker()
