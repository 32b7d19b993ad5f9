"""``fg2u.experiment`` — the layer every benchmark runs on: a benchmark supplies its problem, data, evaluation
and named configs; the core owns the rest.

* [`spec`][fg2u.experiment.spec] — the estimator spec grammar (``fg2u:num_directions=32,chunk_size=8``),
  parsed straight into the registry.
* [`records`][fg2u.experiment.records] — the one record schema ([`ResultRecord`][fg2u.experiment.records.ResultRecord]:
  estimator and problem settings, metrics, memory, anytime curve, status, provenance) and its atomic JSON Lines I/O.
* [`provenance`][fg2u.experiment.provenance] — the code that ran (commit, dirty sources), command, host, CPU,
  accelerator, versions; run ids and completion markers.
* [`loop`][fg2u.experiment.loop] — the meta loop (progress, timings, divergence, evaluations along the way).
* [`memory`][fg2u.experiment.memory] — the peak-RSS measure for code without compiled-memory analysis.
* [`runner`][fg2u.experiment.runner] — [`Experiment`][fg2u.experiment.runner.Experiment],
  [`Trial`][fg2u.experiment.runner.Trial], [`Baseline`][fg2u.experiment.runner.Baseline] and
  [`main`][fg2u.experiment.runner.main], the command line of every benchmark.

Standard library only: importing it loads neither JAX nor PyTorch (the runner imports the benchmark's
backend when it runs).
"""

from fg2u.experiment.loop import Diverged, LoopResult, progress, run_meta_loop
from fg2u.experiment.provenance import Provenance, RunContext, start_run
from fg2u.experiment.records import (
    Curve,
    Memory,
    RecordError,
    ResultRecord,
    append_records,
    iter_records,
    make_record,
    read_records,
)
from fg2u.experiment.runner import Baseline, Experiment, MethodResult, Task, Trial, UsageError, main
from fg2u.experiment.spec import Spec, SpecError, build, parse

__all__ = [
    "Baseline",
    "Curve",
    "Diverged",
    "Experiment",
    "LoopResult",
    "Memory",
    "MethodResult",
    "Provenance",
    "RecordError",
    "ResultRecord",
    "RunContext",
    "Spec",
    "SpecError",
    "Task",
    "Trial",
    "UsageError",
    "append_records",
    "build",
    "iter_records",
    "main",
    "make_record",
    "parse",
    "progress",
    "read_records",
    "run_meta_loop",
    "start_run",
]
