"""The core's own benchmarks, declared like any other (entry points ``fg2u.benchmarks: core`` and
``scaling`` in the core's ``pyproject.toml``; see [`fg2u.benchmarks`][fg2u.benchmarks]).

* ``core`` — ``packages/core/benchmarks/bench_core.py``: compiled (XLA) temporary memory of every JAX
  estimator and peak RSS of the torch backend against the unroll depth T, at meta-dimension N. Its smoke
  run (``--size small``) needs a source checkout; without the script the regression check says so.
  Its ``peers`` task (``bench_peers.py``, ``nox -s bench_peers``) runs the same problem in fg2u and in
  TorchOpt, higher, ``jax.grad`` through ``lax.scan`` and JAXopt: seconds per meta-gradient and memory.
* ``scaling`` — ``packages/core/benchmarks/bench_scaling.py``: direction-parallel FG²U against the
  number of devices (no smoke run: it spawns processes and is not a regression signal).
"""

from __future__ import annotations

from fg2u.benchmarks import Benchmark, Metric

_BENCH_CORE = "{repo_root}/packages/core/benchmarks/bench_core.py"

CORE = Benchmark(
    name="core",
    title="Memory of every estimator against the unroll depth T (synthetic problem)",
    smoke_command=("{python}", _BENCH_CORE, "--size", "small", "--out", "{out}"),
    smoke_requires=(_BENCH_CORE,),
    metrics=(
        # XLA's compiled memory is deterministic for given code and shapes: gated to 1 %
        Metric(
            "compiled_temp_bytes",
            "lower",
            "bytes",
            "compiled temporary memory (XLA)",
            columns=("num_steps",),
            kind="deterministic",
            tolerance=0.01,
        ),
        # a process's RSS depends on the machine and allocator: shown, not gated
        Metric("peak_rss_delta_bytes", "lower", "bytes", "peak RSS increase", columns=("num_steps",), kind="info"),
        # versus peers (bench_peers.py: the same problem in fg2u, TorchOpt, higher, jax.grad, JAXopt)
        Metric(
            "seconds_per_meta_gradient",
            "lower",
            "s",
            "seconds per meta-gradient (versus peers)",
            tasks=("peers",),
            columns=("num_steps",),
            kind="info",
        ),
        Metric(
            "xla_temp_bytes",
            "lower",
            "bytes",
            "compiled temporary memory (versus peers, JAX)",
            tasks=("peers",),
            columns=("num_steps",),
            kind="info",
        ),
    ),
    columns=("num_steps",),
    tables=("task", "config", "meta_dim"),
    labels={"num_steps": "T", "meta_dim": "N"},
    order=10,
    yardsticks=("plain-unroll",),  # the forward unroll alone: no meta-gradient
)

SCALING = Benchmark(
    name="scaling",
    title="Direction-parallel FG²U against the number of devices",
    smoke_command=None,
    metrics=(
        Metric(
            "wall_time_s",
            "lower",
            "s",
            "wall time per estimate",
            columns=("num_devices",),
            kind="info",
            tasks=("fg2u-directions",),
        ),
        Metric(
            "compiled_temp_bytes",
            "lower",
            "bytes",
            "compiled temporary memory per device",
            columns=("num_devices",),
            tasks=("fg2u-directions",),
        ),
    ),
    columns=("num_devices",),
    tables=("task", "config"),
    labels={"num_devices": "devices"},
    # where FG²U wins: measured memory and seconds of the exact estimators and FG²U against T, N, width and
    # devices, the fitted laws and the projected crossovers (benchmarks/where_fg2u_wins*.py; docs page of that name)
    figures=("scaling/where-fg2u-wins.png",),
    order=90,
)
