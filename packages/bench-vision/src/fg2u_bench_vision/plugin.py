"""This benchmark's declaration for the fg2u leaderboard and regression check (entry point
``fg2u.benchmarks: vision``; see :mod:`fg2u.benchmarks`).

Reference rows: the (FG)²U paper (Shen et al., NeurIPS 2024), Table 1 — test accuracy (%) of a
ConvNet-3 trained on the condensed set, full data sets, 10,000 meta steps on GPUs. They sit beside our
runs of the same data set and IPC (our ``digits`` and ``mnist-test-resplit`` are other data sets).
"""

from __future__ import annotations

from fg2u.benchmarks import Benchmark, Metric, Reference

_TABLE1 = "(FG)²U paper, Table 1 (test accuracy of a ConvNet-3 trained on the condensed set)"
#: dataset: {ipc: (TRGU, HessianFree, Neumann, FG2U, RGU)} — the whole of the paper's Table 1 (means)
_ESTIMATORS = ("TRGU", "HessianFree", "Neumann", "FG2U", "RGU")
_PAPER = {
    "mnist": {
        1: (73.76, 65.98, 68.37, 82.44, 92.32),
        10: (94.05, 94.97, 95.75, 96.12, 96.79),
        50: (96.63, 96.34, 96.78, 97.01, 97.72),
    },
    "cifar10": {
        1: (20.78, 19.72, 21.33, 29.37, 34.08),
        10: (44.01, 45.32, 47.67, 50.10, 53.15),
        50: (49.22, 48.73, 50.02, 51.98, 56.37),
    },
    "cifar100": {
        1: (3.96, 3.14, 4.52, 8.22, 15.61),
        10: (20.20, 19.01, 20.87, 23.38, 25.42),
        50: (22.33, 23.59, 24.52, 25.84, 28.52),
    },
}


def paper_accuracy(dataset: str, ipc: int) -> dict[str, float]:
    """The paper's Table 1 test accuracies (%) by estimator display name for ``dataset`` (``"mnist"``,
    ``"cifar10"``, ``"cifar100"``) and ``ipc``; empty when the paper has no such row."""
    return dict(zip(_ESTIMATORS, _PAPER.get(dataset, {}).get(ipc, ())))


BENCHMARK = Benchmark(
    name="vision",
    title="Dataset condensation (test accuracy of a ConvNet trained on the condensed images)",
    # the smoke run trains every default method and checks every estimator's meta-gradient against RGU's on 16
    # fixed draws (the gate's deterministic gradient check: sign, 1/b scale, repeated directions, truncation)
    smoke_command=(
        "{python}",
        "-m",
        "fg2u_bench_vision",
        "--config",
        "smoke",
        "--seeds",
        "{seeds}",
        "--out",
        "{out}",
        "--no-progress",
        "--gradient-check",
        "16",
    ),
    metrics=(Metric("test_accuracy_mean", "higher", "%", "test accuracy", kind="stochastic"),),
    columns=("dataset", "ipc"),
    # the probe's cosine-versus-T and cosine-versus-memory figure (python -m fg2u_bench_vision.probe), and test
    # accuracy against memory and seconds per meta step of the T = 100 runs (python -m fg2u_bench_vision.plots)
    figures=("vision/gradient-quality.png", "vision/accuracy-vs-cost.png"),
    tables=("config",),
    labels={"ipc": "IPC"},
    order=20,
    yardsticks=("RandomReal", "WholeDataset"),  # random real images; training on the whole data set
    references=tuple(
        Reference("test_accuracy_mean", estimator, value, "%", {"dataset": dataset, "ipc": ipc}, _TABLE1)
        for dataset, by_ipc in _PAPER.items()
        for ipc, values in by_ipc.items()
        for estimator, value in zip(_ESTIMATORS, values)
    ),
)
