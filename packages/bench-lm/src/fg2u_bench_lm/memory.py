"""Peak memory of one CaMeLS meta-gradient versus the unroll depth T, for RGU and FG²U.

Every configuration runs in a fresh subprocess (``python -m fg2u_bench_lm.memory --worker ...``), which
builds the models and one meta-step problem of depth T, records the peak resident set size
(``resource.getrusage(...).ru_maxrss``) just before the meta-gradient call, computes the meta-gradient
once, and reports the increase of the peak: the memory the estimator itself needed on top of models,
data and the libraries. RGU stores every inner step for the backward pass (memory ∝ T); FG²U carries
only (θ_t, ∂θ_t·v) forward (memory flat in T).

:func:`sweep` runs RGU at increasing T until the budget would be exceeded (the next T is skipped when
the linear extrapolation of the last measurement is over budget) and FG²U at its T values;
:func:`plot_memory` draws the PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["measure_in_subprocess", "sweep", "plot_memory", "worker_main"]

MEASURE = "peak RSS increase during one meta-gradient (ru_maxrss after − before), fresh subprocess per configuration"


def _worker(config_name: str, estimator: str, num_steps: int, seed: int, directions: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from fg2u.records import peak_rss_bytes
    from fg2u_bench_lm import camels, data, models, tokenizer
    from fg2u_bench_lm.configs import get_config

    cfg = get_config(config_name)
    splits = data.make_synthetic_splits(
        num_qa_tune=0,
        num_meta_train=max(num_steps, 8),
        num_meta_val=0,
        num_test=0,
        num_locality=max(cfg.spec.locality_texts, 4),
        seed=seed,
        stream=cfg.stream,
        facts_per_document=cfg.facts_per_document,
        distractor_sentences=tuple(cfg.distractor_sentences),
    )
    tok = tokenizer.train_tokenizer(
        splits.all_texts() + [d.text for d in data.generate_sparse_documents(200, seed + 1)], vocab_size=cfg.vocab_size
    )
    base = models.build_base_model(cfg.memory_model_size, tok, cfg.n_positions, seed=seed)
    weight_model = models.build_weight_model(cfg.memory_model_size, tok, cfg.n_positions, seed=seed)
    for p in list(base.parameters()) + list(weight_model.parameters()):
        p.requires_grad_(False)
    spec = camels.CamelsSpec(**{**cfg.spec.__dict__, "num_steps": num_steps})
    theta0 = models.param_dict(base)
    problem = camels.make_task(
        base, weight_model, theta0, tok, splits.meta_train, splits.locality, spec, random.Random(seed)
    )
    phi = models.param_dict(weight_model)
    import fg2u.torch as fgt

    if estimator == "rgu":
        est = fgt.RGU()
    elif estimator == "fg2u":
        est = fgt.FG2U(num_directions=directions, chunk_size=cfg.fg2u_chunk_size)
    else:
        raise ValueError(f"memory sweep estimator must be 'rgu' or 'fg2u', got {estimator!r}")
    before = peak_rss_bytes()
    start = time.perf_counter()
    grad, aux = est(problem, phi, seed)
    seconds = time.perf_counter() - start
    after = peak_rss_bytes()
    return {
        "estimator": estimator,
        "num_steps": num_steps,
        "peak_rss_before": before,
        "peak_rss_after": after,
        "delta_bytes": after - before,
        "seconds": seconds,
        "outer_loss": float(aux.outer_loss),
        "model_size": cfg.memory_model_size,
        "base_params": models.count_parameters(theta0),
        "weight_params": models.count_parameters(phi),
        "directions": directions if estimator == "fg2u" else None,
        "chunk_size": cfg.fg2u_chunk_size if estimator == "fg2u" else None,
        "max_doc_tokens": spec.max_doc_tokens,
    }


def measure_in_subprocess(
    config_name: str,
    estimator: str,
    num_steps: int,
    *,
    seed: int = 0,
    directions: int = 1,
    threads: int = 1,
    timeout_s: float = 1800,
) -> dict:
    """Runs one configuration in a fresh Python process and returns its measurement dict."""
    cmd = [
        sys.executable,
        "-m",
        "fg2u_bench_lm.memory",
        "--worker",
        "--config",
        config_name,
        "--estimator",
        estimator,
        "--num-steps",
        str(num_steps),
        "--seed",
        str(seed),
        "--directions",
        str(directions),
        "--threads",
        str(threads),
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TRANSFORMERS_VERBOSITY="error")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"memory worker failed ({' '.join(cmd)}):\n{done.stderr[-3000:]}")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"memory worker printed no result:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def sweep(
    config_name: str,
    rgu_steps: Sequence[int],
    fg2u_steps: Sequence[int],
    budget_bytes: int,
    *,
    seed: int = 0,
    directions: int = 1,
    threads: int = 1,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """RGU at increasing T until the first measurement over the budget, then FG²U at each of
    ``fg2u_steps``; one dict per run, with ``"within_budget"``.

    RGU entries that were not run (the previous measurement was already over budget, or the linear
    extrapolation exceeds twice the budget) are returned with ``"skipped": True`` and the extrapolated
    ``"predicted_bytes"``.
    """
    results: list[dict] = []
    last = None
    for t in sorted(rgu_steps):
        if last is not None:
            predicted = last["delta_bytes"] * t / last["num_steps"]
            # measure up to the first T over the budget (so the curve visibly crosses it), but never a T
            # predicted far beyond it
            if predicted > 2 * budget_bytes or last["delta_bytes"] > budget_bytes:
                results.append({"estimator": "rgu", "num_steps": t, "skipped": True, "predicted_bytes": int(predicted)})
                if progress:
                    why = (
                        f"T={last['num_steps']} was already over budget"
                        if last["delta_bytes"] > budget_bytes
                        else "predicted over twice the budget"
                    )
                    progress(f"rgu T={t}: skipped ({why}; linear prediction {predicted / 2**20:.0f} MiB)")
                continue
        last = measure_in_subprocess(config_name, "rgu", t, seed=seed, threads=threads)
        last["within_budget"] = last["delta_bytes"] <= budget_bytes
        results.append(last)
        if progress:
            progress(f"rgu T={t}: {last['delta_bytes'] / 2**20:.1f} MiB, {last['seconds']:.1f} s")
    for t in sorted(fg2u_steps):
        r = measure_in_subprocess(config_name, "fg2u", t, seed=seed, directions=directions, threads=threads)
        r["within_budget"] = r["delta_bytes"] <= budget_bytes
        results.append(r)
        if progress:
            progress(f"fg2u T={t}: {r['delta_bytes'] / 2**20:.1f} MiB, {r['seconds']:.1f} s")
    return results


def plot_memory(
    results: Sequence[dict],
    path: str | os.PathLike,
    budget_bytes: int | None = None,
    title: str = "CaMeLS meta-gradient: peak memory vs unroll depth",
) -> Path:
    """PNG of peak-memory increase (MiB) versus T, one line per estimator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, marker in (("rgu", "o"), ("fg2u", "s")):
        pts = sorted(
            (r["num_steps"], r["delta_bytes"] / 2**20)
            for r in results
            if r["estimator"] == name and not r.get("skipped")
        )
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=name.upper())
        skipped = [r["num_steps"] for r in results if r["estimator"] == name and r.get("skipped")]
        for t in skipped:
            ax.axvline(t, color="grey", alpha=0.15)
    if budget_bytes:
        ax.axhline(budget_bytes / 2**20, color="red", linestyle="--", label=f"budget ({budget_bytes / 2**20:.0f} MiB)")
    ax.set_xlabel("unroll depth T (documents per meta step)")
    ax.set_ylabel("peak memory increase (MiB)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def worker_main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one memory measurement (used by the sweep)")
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--estimator", required=True, choices=("rgu", "fg2u"))
    parser.add_argument("--num-steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--directions", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    result = _worker(args.config, args.estimator, args.num_steps, args.seed, args.directions, args.threads)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    worker_main()
