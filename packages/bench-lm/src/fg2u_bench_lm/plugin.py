"""This benchmark's declaration for the fg2u leaderboard and regression check (entry point
``fg2u.benchmarks: lm``; see :mod:`fg2u.benchmarks`).

Headline metrics: F1 (%) of the adapted base model on the questions (task ``camels``) and peak memory
against the unroll depth T (task ``memory``). Reference rows: the (FG)²U paper (Shen et al., NeurIPS
2024), Table 2 — StreamingQA F1 with CaMeLS token weighting, per base model.
"""

from __future__ import annotations

from fg2u.benchmarks import Benchmark, Metric, Reference

_TABLE2 = "(FG)²U paper, Table 2 (StreamingQA F1 of the adapted base model, CaMeLS weighting)"
#: base model: (RGU as implemented in CaMeLS, FG2U)
_PAPER = {"distilgpt2": (5.53, 6.37), "gpt2-large": (12.19, 12.50), "gpt2-xl": (12.94, 14.42)}

BENCHMARK = Benchmark(
    name="lm",
    title="CaMeLS: meta-learned token weights for online LM adaptation",
    smoke_command=(
        "{python}",
        "-m",
        "fg2u_bench_lm",
        "--config",
        "smoke",
        "--seeds",
        "{seeds}",
        "--out",
        "{out}",
        "--cache-dir",
        "off",
        "--no-progress",
        "--gradient-check",
        "4",
    ),
    # The smoke run's F1 is 0 for every method (a 6-step pre-trained tiny model answers nothing), so what the gate
    # can check there is the meta-training itself: the validation meta-objective after its 2 meta steps, the
    # same to float32 round-off for the same code and seed (one torch thread), moves by ~1e-4 relative
    # under meta-training, so it is gated to 2e-5; and the gradient check (every estimator against RGU on 4
    # fixed tasks) catches a flipped sign or a wrong scale by name.
    metrics=(
        Metric("f1", "higher", "%", "F1", tasks=("camels",), columns=("dataset", "model_size")),
        Metric(
            "val_outer_loss_after",
            "lower",
            "",
            "validation meta-objective after meta-training",
            tasks=("camels",),
            kind="deterministic",
            headline=False,
            tolerance=2e-5,
        ),
        Metric(
            "peak_memory_mib", "lower", "MiB", "peak memory", tasks=("memory",), columns=("num_steps",), kind="info"
        ),
    ),
    columns=("dataset", "model_size"),
    labels={"num_steps": "T", "model_size": "model"},
    order=40,
    yardsticks=("base", "uniform", "oracle"),  # no adaptation; uniform token weights; oracle: 1 on answer tokens
    references=tuple(
        Reference(
            "f1", estimator, value, "%", {"dataset": "streamingqa", "model_size": model}, _TABLE2, estimators=names
        )
        for model, (rgu, fg2u) in _PAPER.items()
        for estimator, value, names in (("RGU (CaMeLS impl.)", rgu, ("RGU",)), ("FG2U", fg2u, ("FG2U",)))
    ),
)
