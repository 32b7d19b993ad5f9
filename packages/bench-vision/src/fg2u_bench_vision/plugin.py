"""This benchmark's declaration for the fg2u leaderboard and regression check (entry point
``fg2u.benchmarks: vision``; see :mod:`fg2u.benchmarks`).

Reference rows: the (FG)²U paper (Shen et al., NeurIPS 2024), Table 1 — test accuracy (%) of a
ConvNet-3 trained on the condensed set, full data sets, 10,000 meta steps on GPUs. They sit beside our
runs of the same data set and IPC (our ``digits`` and ``mnist-test-resplit`` are other data sets).
"""

from __future__ import annotations

from fg2u.benchmarks import Benchmark, Metric, Reference

_TABLE1 = "(FG)²U paper, Table 1 (test accuracy of a ConvNet-3 trained on the condensed set)"
#: dataset: {ipc: (FG2U, RGU)}
_PAPER = {
    "mnist": {1: (82.44, 92.32), 10: (96.12, 96.79), 50: (97.01, 97.72)},
    "cifar10": {1: (29.37, 34.08), 10: (50.10, 53.15), 50: (51.98, 56.37)},
    "cifar100": {1: (8.22, 15.61), 10: (23.38, 25.42), 50: (25.84, 28.52)},
}

BENCHMARK = Benchmark(
    name="vision",
    title="Dataset condensation (test accuracy of a ConvNet trained on the condensed images)",
    smoke_command=("{python}", "-m", "fg2u_bench_vision", "--config", "smoke", "--seeds", "{seeds}", "--out", "{out}"),
    metrics=(Metric("test_accuracy_mean", "higher", "%", "test accuracy"),),
    columns=("dataset", "ipc"),
    tables=("config",),
    labels={"ipc": "IPC"},
    order=20,
    yardsticks=("RandomReal", "WholeDataset"),  # random real images; training on the whole data set
    references=tuple(
        Reference("test_accuracy_mean", estimator, value, "%", {"dataset": dataset, "ipc": ipc}, _TABLE1)
        for dataset, by_ipc in _PAPER.items()
        for ipc, values in by_ipc.items()
        for estimator, value in zip(("FG2U", "RGU"), values)
    ),
)
