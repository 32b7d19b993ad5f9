"""Command line: ``python -m fg2u_bench_lm --config smoke|cpu|paper --estimators uniform rgu fg2u ...``.

For each seed: build the data streams and a tokenizer, pre-train the base model on the QA format
(cached under ``<out>/cache``), then for each estimator

* ``base`` — no adaptation at all (closed-book reference: what the pre-trained model guesses);
* ``uniform`` — adapt on the test stream with uniform token weights (plain fine-tuning baseline);
* ``rgu`` / ``fg2u`` — meta-train a fresh weight model with that meta-gradient estimator
  (``fg2u.torch.RGU`` / ``fg2u.torch.FG2U``), then adapt with the learned weights;

answer the test questions greedily and score EM (strict and prefix) and F1. One result record per
(seed, estimator) is appended to ``<out>/<config>.jsonl``. ``--memory-sweep`` also measures peak
memory versus T (records with ``task="memory"`` and a PNG plot).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fg2u.harness import add_common_arguments

__all__ = ["main", "prepare", "run_estimator", "load_splits"]

FIXED_WEIGHTS = ("base", "uniform", "oracle")  # baselines of this benchmark (no meta-gradient)


def _registered() -> tuple[str, ...]:
    import fg2u.estimators

    return fg2u.estimators.names()


ESTIMATORS = FIXED_WEIGHTS + _registered()
DEFAULT_ESTIMATORS = ("base", "uniform", "oracle", "rgu", "fg2u")
SQUAD_DEV_LABEL = "squad-v1.1-dev-article-split"
"""Data set label of the real-text stream: SQuAD v1.1 dev only, split by article (not CaMeLS's SQuAD-Seq)."""


def _tqdm(**kwargs):
    from tqdm.auto import tqdm

    return tqdm(**kwargs)


def load_splits(cfg, args, seed: int):
    """The data streams: synthetic (default) or real files (``--data squad|streamingqa``), capped to the
    config's split sizes."""
    from fg2u_bench_lm import data

    if args.data == "synthetic":
        return data.make_synthetic_splits(
            num_qa_tune=cfg.num_qa_tune,
            num_meta_train=cfg.num_meta_train,
            num_meta_val=cfg.num_meta_val,
            num_test=cfg.num_test,
            num_locality=cfg.num_locality,
            seed=seed,
            questions_per_document=cfg.questions_per_document,
            stream=cfg.stream,
            facts_per_document=cfg.facts_per_document,
            distractor_sentences=tuple(cfg.distractor_sentences),
        )
    if args.data == "squad-dev":
        splits = data.squad_dev_article_splits(args.data_file, seed=seed, label=SQUAD_DEV_LABEL)
    elif args.data == "squad":
        splits = data.camels_squad_splits(args.data_file, args.test_file, num_locality=cfg.num_locality)
    elif args.data == "streamingqa":
        docs = data.load_streamingqa_jsonl(args.data_file, args.documents_file)
        qa_tune, meta_train, meta_val, test, loc = data.split_documents(docs, (0.4, 0.4, 0.05, 0.1, 0.05), seed)
        splits = data.Splits(
            qa_tune=qa_tune,
            meta_train=meta_train,
            meta_val=meta_val,
            test=test,
            locality=tuple(d.text for d in loc),
            name="streamingqa",
        )
    else:
        raise ValueError(f"--data must be synthetic, squad or streamingqa, got {args.data!r}")
    rng = random.Random(seed)

    def cap(docs, n):
        docs = list(docs)
        return tuple(rng.sample(docs, n)) if n is not None and len(docs) > n else tuple(docs)

    return dataclasses.replace(
        splits,
        qa_tune=cap(splits.qa_tune, cfg.num_qa_tune),
        meta_train=cap(splits.meta_train, cfg.num_meta_train),
        meta_val=cap(splits.meta_val, cfg.num_meta_val),
        test=cap(splits.test, cfg.num_test),
        locality=tuple(list(splits.locality)[: cfg.num_locality]),
    )


@dataclasses.dataclass
class Setup:
    splits: Any
    tokenizer: Any
    base: Any
    pretrain_loss: float
    pretrain_seconds: float


def _cache_key(cfg, args, seed: int) -> str:
    fields = {
        k: v
        for k, v in cfg.to_dict().items()
        if k.startswith(("num_", "questions", "vocab", "model", "n_pos", "pretrain", "stream", "facts", "distract"))
    }
    fields.update(max_doc_tokens=cfg.spec.max_doc_tokens, max_qa_tokens=cfg.spec.max_qa_tokens)
    fields.update(data=args.data, data_file=str(args.data_file), model_dir=str(args.model_dir), seed=seed)
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare(cfg, args, seed: int, progress: bool = True) -> Setup:
    """Data, tokenizer and the QA-pre-trained base model for one seed (cached in ``<out>/cache``)."""
    import torch

    from fg2u_bench_lm import models, pretrain, tokenizer

    splits = load_splits(cfg, args, seed)
    cache = Path(args.cache_dir or Path(args.out) / "cache") / f"base-{cfg.name}-{_cache_key(cfg, args, seed)}"
    if args.model_dir is not None:
        tok = tokenizer.load_local_tokenizer(args.model_dir)
    elif (cache / "tokenizer.json").exists():
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast.from_pretrained(str(cache))
    else:
        tok = tokenizer.train_tokenizer(splits.all_texts(), vocab_size=cfg.vocab_size)
    base = models.build_base_model(args.model_dir or cfg.model_size, tok, cfg.n_positions, seed=seed)
    state_file, meta_file = cache / "base.pt", cache / "pretrain.json"
    if state_file.exists() and meta_file.exists() and not args.no_cache:
        base.load_state_dict(torch.load(state_file))
        meta = json.loads(meta_file.read_text())
        return Setup(splits, tok, base, meta["final_loss"], meta["seconds"])
    bar = _tqdm(total=cfg.pretrain_steps, desc=f"pretrain seed {seed}", disable=not progress, leave=False)
    result = pretrain.pretrain_base_model(
        base,
        tok,
        splits.qa_tune,
        steps=cfg.pretrain_steps,
        lr=cfg.pretrain_lr,
        batch_size=cfg.pretrain_batch,
        max_doc_tokens=cfg.spec.max_doc_tokens,
        max_qa_tokens=cfg.spec.max_qa_tokens,
        seed=seed,
        progress=lambda s, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")),
    )
    bar.close()
    final = statistics.fmean(result["losses"][-20:])
    if not args.no_cache:
        cache.mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(str(cache))
        torch.save(base.state_dict(), state_file)
        meta_file.write_text(json.dumps({"final_loss": final, "seconds": result["seconds"]}))
    return Setup(splits, tok, base, final, result["seconds"])


def _validation_loss(cfg, setup, weight_model, spec, seed: int, num_tasks: int | None = None) -> float:
    """Mean meta objective L(φ) over fixed validation tasks (same tasks before and after training)."""
    import torch

    from fg2u.torch import meta_objective
    from fg2u_bench_lm import camels, models

    docs = setup.splits.meta_val if len(setup.splits.meta_val) >= spec.num_steps else setup.splits.meta_train
    theta0 = models.param_dict(setup.base)
    rng = random.Random(10_000 + seed)
    phi = models.param_dict(weight_model)
    values = []
    with torch.no_grad():
        for _ in range(num_tasks or cfg.validation_tasks):
            problem = camels.make_task(
                setup.base, weight_model, theta0, setup.tokenizer, docs, setup.splits.locality, spec, rng
            )
            values.append(float(meta_objective(problem)(phi)))
    return statistics.fmean(values)


def make_estimator(name: str, cfg):
    """The meta-gradient estimator registered as ``name`` (``fg2u.estimators.names()``: ``"rgu"``, ``"fg2u"``,
    ``"trgu"``, …) with the config's settings: ``num_directions`` ← ``fg2u_directions`` and ``chunk_size`` ←
    ``fg2u_chunk_size`` where the estimator has them.

    Returns ``(estimator, display name, settings dict, T)``; forward-mode estimators (random directions) unroll
    ``fg2u_num_steps`` inner steps, the others ``spec.num_steps`` (their memory grows with T).
    """
    import dataclasses

    import fg2u.estimators
    import fg2u.torch as fgt

    cls = fgt.BACKEND.get(name)
    fields = {f.name for f in dataclasses.fields(cls)}
    provided = {"num_directions": cfg.fg2u_directions, "chunk_size": cfg.fg2u_chunk_size}
    est = fgt.make(name, **{k: v for k, v in provided.items() if k in fields})
    forward = isinstance(est, fg2u.estimators.RandomDirections)
    return est, est.display_name, est.settings(), cfg.fg2u_num_steps if forward else cfg.spec.num_steps


def run_estimator(cfg, args, setup: Setup, name: str, seed: int, progress: bool = True):
    """Meta-train (``rgu`` / ``fg2u``), or use fixed weights (``base``: no adaptation, ``uniform``,
    ``oracle``: 1 on the answer-bearing tokens); evaluate with Adam (and SGD when ``cfg.eval_sgd_lr``);
    return ``(record, prediction rows, extras)`` where extras holds the validation curve and weight fn."""
    import torch

    import fg2u.estimators
    from fg2u.records import make_record
    from fg2u_bench_lm import camels, evaluate, models

    spec = cfg.spec
    settings: dict[str, Any] = {
        "model_size": args.model_dir or cfg.model_size,
        "weight_model_size": cfg.weight_model_size,
        "eval_lr": cfg.eval_lr,
        "eval_optimizer": cfg.eval_optimizer,
        "eval_sgd_lr": cfg.eval_sgd_lr,
        "eval_chunk": cfg.eval_chunk,
        "max_new_tokens": cfg.max_new_tokens,
        "decoding": "greedy",
        "pretrain_steps": cfg.pretrain_steps,
        "data": args.data,
        "max_doc_tokens": spec.max_doc_tokens,
        "base_params": models.count_parameters(models.param_dict(setup.base)),
    }
    if args.data == "synthetic":
        settings.update(
            stream=cfg.stream,
            facts_per_document=cfg.facts_per_document,
            distractor_sentences=list(cfg.distractor_sentences),
        )
    metrics: dict[str, float] = {"pretrain_final_loss": setup.pretrain_loss}
    extras: dict[str, Any] = {"val": []}
    start = time.perf_counter()
    sgd_scale = 1.0
    if name in ("uniform", "base"):
        weight_fn = evaluate.uniform_weights
        label = name
        # SGD protocol replays the meta-training inner loop: uniform = the weight model at initialisation
        # (every weight log(2)/β), i.e. plain fine-tuning with SGD at lr η·log(2)/β
        sgd_scale = math.log(2) / 3.0
        settings["sgd_uniform_weight"] = sgd_scale
    elif name == "oracle":
        weight_fn = evaluate.OracleWeights(cfg.oracle_scope)
        label = "oracle"
        settings["oracle_scope"] = cfg.oracle_scope
    else:
        estimator, label, est_settings, num_steps = make_estimator(name, cfg)
        settings.update(est_settings)
        spec = dataclasses.replace(spec, num_steps=num_steps)
        forward = isinstance(estimator, fg2u.estimators.RandomDirections)  # as in make_estimator
        outer_lr = cfg.fg2u_outer_lr if forward and cfg.fg2u_outer_lr is not None else cfg.outer_lr
        grad_accum = cfg.fg2u_grad_accum if forward and cfg.fg2u_grad_accum is not None else cfg.grad_accum
        carry = cfg.fg2u_carry_reset if forward else cfg.rgu_carry_reset
        weight_model = models.build_weight_model(
            args.weight_model_dir or cfg.weight_model_size,
            setup.tokenizer,
            cfg.n_positions,
            seed=seed,
            backbone=cfg.weight_backbone,
            base=setup.base,
        )
        settings.update(
            dataclasses.asdict(spec),
            meta_steps=cfg.meta_steps,
            grad_accum=grad_accum,
            outer_lr=outer_lr,
            carry_reset=carry,
            weight_backbone=cfg.weight_backbone,
            weight_params=models.count_parameters(
                {k: p for k, p in weight_model.named_parameters() if p.requires_grad}
            ),
        )
        history = camels.meta_train(
            setup.base,
            weight_model,
            setup.tokenizer,
            setup.splits.meta_train,
            setup.splits.locality,
            estimator,
            spec,
            meta_steps=cfg.meta_steps,
            outer_lr=outer_lr,
            grad_accum=grad_accum,
            seed=seed,
            carry_reset=carry,
            validate=lambda: _validation_loss(cfg, setup, weight_model, spec, seed),
            validate_every=cfg.validate_every,
            progress=progress,
            desc=f"meta-train {label} seed {seed}",
        )
        extras["val"] = history["val"]
        metrics["val_outer_loss_before"] = history["val"][0][1]
        metrics["val_outer_loss_after"] = history["val"][-1][1]
        losses = history["outer_losses"]
        k = max(1, len(losses) // 5)
        metrics.update(
            train_outer_loss_first=statistics.fmean(losses[:k]),
            train_outer_loss_last=statistics.fmean(losses[-k:]),
            meta_train_seconds=history["seconds"],
        )
        weight_model.eval()

        def weight_fn(ids, mask):
            with torch.no_grad():
                return weight_model(ids, mask)

        metrics.update(_weight_stats(setup, weight_fn, spec))
    extras["weight_fn"] = weight_fn

    test_docs = list(setup.splits.test)[: cfg.num_eval_docs] if cfg.num_eval_docs else list(setup.splits.test)
    protocols = [("", cfg.eval_optimizer, cfg.eval_lr)]
    if cfg.eval_sgd_lr is not None and cfg.eval_optimizer != "sgd":
        protocols.append(("_sgd", "sgd", cfg.eval_sgd_lr * sgd_scale))
    rows = []
    for suffix, optimizer, lr in protocols:
        bar = _tqdm(
            total=len(test_docs), desc=f"evaluate {label}{suffix} seed {seed}", disable=not progress, leave=False
        )
        scores, r = evaluate.evaluate_stream(
            setup.base,
            setup.tokenizer,
            test_docs,
            weight_fn,
            lr=lr,
            max_doc_tokens=spec.max_doc_tokens,
            chunk_size=cfg.eval_chunk,
            max_new_tokens=cfg.max_new_tokens,
            optimizer=optimizer,
            adapt=name != "base",
            progress=bar.update,
        )
        bar.close()
        metrics.update({f"{k}{suffix}": v for k, v in scores.items()})
        rows.extend({**row, "protocol": optimizer} for row in r)
        if name == "base":
            metrics.update({f"{k}_sgd": v for k, v in scores.items()})  # no adaptation: protocol-independent
            break
    record = make_record(
        benchmark="lm",
        task="camels",
        dataset=setup.splits.name,
        config=_label(cfg, args),
        estimator=label,
        settings=settings,
        seed=seed,
        metrics=metrics,
        wall_time_s=time.perf_counter() - start,
    )
    return record, rows, extras


def _label(cfg, args) -> str:
    return cfg.name + (f"-{args.tag}" if getattr(args, "tag", None) else "")


def _weight_stats(setup, weight_fn, spec) -> dict[str, float]:
    """Mean and coefficient of variation (std/mean) of the learned weights over the test tokens (a CV
    near 0 means the weights are still nearly uniform) and, where answer spans are known, the ratio of
    the mean weight on answer tokens to the mean weight on the other tokens (1 = no preference)."""

    from fg2u_bench_lm.tokenizer import encode_documents, span_token_mask

    docs = list(setup.splits.test)
    batch = encode_documents(setup.tokenizer, docs, spec.max_doc_tokens)
    mask = batch["attention_mask"].bool()
    weights = weight_fn(batch["input_ids"], batch["attention_mask"])
    w = weights[mask]
    mean = float(w.mean())
    out = {"test_weight_mean": mean, "test_weight_cv": float(w.std()) / max(mean, 1e-12)}
    if docs and all(d.answer_spans for d in docs):
        answer = span_token_mask(setup.tokenizer, docs, spec.max_doc_tokens, scope="answer").bool() & mask
        other = mask & ~answer
        out["test_weight_answer_ratio"] = float(weights[answer].mean()) / max(float(weights[other].mean()), 1e-12)
    return out


def _memory(cfg, args) -> list:
    from fg2u.records import make_record
    from fg2u_bench_lm import memory

    results = memory.sweep(
        cfg.name,
        cfg.memory_rgu_steps,
        cfg.memory_fg2u_steps,
        cfg.memory_budget_bytes,
        directions=cfg.fg2u_directions,
        threads=args.threads,
        progress=lambda s: print("  memory:", s, flush=True),
    )
    records = []
    for r in results:
        if r.get("skipped"):
            continue
        settings = {k: v for k, v in r.items() if k not in ("delta_bytes", "seconds", "outer_loss")}
        settings.update(memory_measure=memory.MEASURE, budget_bytes=cfg.memory_budget_bytes)
        records.append(
            make_record(
                benchmark="lm",
                task="memory",
                dataset=f"synthetic-{cfg.stream}-facts".replace("-dense", ""),
                config=cfg.name,
                estimator=r["estimator"].upper(),
                settings=settings,
                seed=0,
                metrics={
                    "peak_memory_mib": r["delta_bytes"] / 2**20,
                    "seconds": r["seconds"],
                    "within_budget": float(r["within_budget"]),
                    "num_steps": r["num_steps"],
                    "outer_loss": r["outer_loss"],
                },
                peak_memory_bytes=r["delta_bytes"],
                wall_time_s=r["seconds"],
            )
        )
    png = memory.plot_memory(results, Path(args.out) / f"memory_vs_T_{cfg.name}.png", cfg.memory_budget_bytes)
    print(f"memory plot: {png}")
    print(f"memory budget {cfg.memory_budget_bytes / 2**20:.0f} MiB")
    print(f"{'estimator':<8} {'T':>4} {'peak MiB':>10} {'seconds':>9}  budget")
    for r in results:
        if r.get("skipped"):
            print(
                f"{r['estimator'].upper():<8} {r['num_steps']:>4} {'skipped':>10}  (not run: a smaller T was over budget "
                f"or the prediction {r['predicted_bytes'] / 2**20:.0f} MiB exceeds twice the budget)"
            )
        else:
            print(
                f"{r['estimator'].upper():<8} {r['num_steps']:>4} {r['delta_bytes'] / 2**20:>10.1f} {r['seconds']:>9.1f}  "
                f"{'inside' if r['within_budget'] else 'OVER'}"
            )
    return records


def _table(records) -> str:
    by: dict[str, list] = {}
    for r in records:
        by.setdefault(r.estimator, []).append(r)
    lines = [
        f"{'weights':<9} {'seeds':>5} {'EM (Adam)':>12} {'F1 (Adam)':>12} {'EM (SGD)':>12} {'F1 (SGD)':>12} "
        f"{'val L before→after':>20} {'w ans/other':>11}"
    ]
    for name, rs in by.items():

        def ms(key, rs=rs):
            vals = [r.metrics[key] for r in rs if key in r.metrics]
            if not vals:
                return "-"
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            return f"{statistics.fmean(vals):.2f}±{sd:.2f}"

        val = "-"
        if "val_outer_loss_before" in rs[0].metrics:
            val = (
                f"{statistics.fmean(r.metrics['val_outer_loss_before'] for r in rs):.3f}→"
                f"{statistics.fmean(r.metrics['val_outer_loss_after'] for r in rs):.3f}"
            )
        ratio = [r.metrics["test_weight_answer_ratio"] for r in rs if "test_weight_answer_ratio" in r.metrics]
        ratio_s = f"{statistics.fmean(ratio):.2f}" if ratio else "-"
        lines.append(
            f"{name:<9} {len(rs):>5} {ms('em'):>12} {ms('f1'):>12} {ms('em_sgd'):>12} {ms('f1_sgd'):>12} "
            f"{val:>20} {ratio_s:>11}"
        )
    return "\n".join(lines)


def _run_seed_jobs(args, argv, cfg, out: Path, path: Path):
    """``--jobs N``: one child process per seed (N at a time, 1 torch thread each), each writing to
    ``<out>/jobs/<label>-<pid>-seed<s>/``; their records are appended to ``path`` in seed order, the validation curves
    merged, and the first seed's heat maps copied next to the records."""
    import shutil
    import subprocess

    from fg2u.records import append_records, read_records

    argv = list(sys.argv[1:] if argv is None else argv)
    drop = {"--seeds", "--out", "--jobs", "--cache-dir", "--memory-sweep"}
    base_argv, skip = [], False
    for a in argv:
        if skip and not a.startswith("--"):
            continue
        skip = a in drop
        if not skip:
            base_argv.append(a)
    cache = args.cache_dir or str(out / "cache")
    pending, running, done = list(args.seeds), [], {}
    env = dict(os.environ, OMP_NUM_THREADS="1")
    while pending or running:
        while pending and len(running) < args.jobs:
            seed = pending.pop(0)
            # a folder of this invocation only (concurrent invocations into the same --out never collide)
            child_out = out / "jobs" / f"{_label(cfg, args)}-{os.getpid()}-seed{seed}"
            if child_out.exists():
                shutil.rmtree(child_out)
            cmd = [
                sys.executable,
                "-m",
                "fg2u_bench_lm",
                *base_argv,
                "--seeds",
                str(seed),
                "--out",
                str(child_out),
                "--cache-dir",
                cache,
                "--no-progress",
            ]
            print(f"seed {seed}: started ({' '.join(cmd[1:])})", flush=True)
            running.append((seed, child_out, subprocess.Popen(cmd, env=env)))
        time.sleep(2)
        for job in list(running):
            seed, child_out, proc = job
            if proc.poll() is not None:
                running.remove(job)
                if proc.returncode != 0:
                    raise RuntimeError(f"seed {seed} failed (exit {proc.returncode}); see its output above")
                done[seed] = child_out
    records, curves = [], {}
    label = _label(cfg, args)
    for seed in args.seeds:
        child = done[seed]
        rs = read_records(child / f"{label}.jsonl")
        append_records(path, rs)
        records.extend(rs)
        cfile = child / f"meta_val_{label}.json"
        if cfile.exists():
            for name, runs in json.loads(cfile.read_text()).items():
                curves.setdefault(name, []).extend(runs)
        if seed == args.seeds[0]:
            for png in child.glob("weights_heatmap_*.png"):
                shutil.copy(png, out / png.name)
    return records, curves


def build_parser() -> argparse.ArgumentParser:
    from fg2u_bench_lm.models import WEIGHT_BACKBONES

    p = argparse.ArgumentParser(prog="python -m fg2u_bench_lm", description=__doc__.split("\n\n")[0])
    add_common_arguments(
        p,
        configs=("smoke", "cpu", "paper"),
        default_out="results/lm",
        estimators=ESTIMATORS,
        default_estimators=DEFAULT_ESTIMATORS,
    )
    p.add_argument("--memory-sweep", action="store_true", help="also measure peak memory vs T (RGU and FG2U)")
    p.add_argument("--memory-only", action="store_true", help="only the memory sweep")
    p.add_argument(
        "--data",
        default="synthetic",
        choices=("synthetic", "squad-dev", "squad", "streamingqa"),
        help="synthetic: the generated sparse-facts stream (default, offline); squad-dev: SQuAD v1.1 dev "
        f"split by article into QA-tune / meta-train / meta-val / test (label {SQUAD_DEV_LABEL!r}); "
        "squad: CaMeLS's SQuAD-Seq (needs the train file); streamingqa",
    )
    p.add_argument(
        "--data-file",
        default=None,
        help="squad-dev: dev-v1.1.json; squad: train JSON; streamingqa: "
        "questions JSONL (default: $FG2U_LM_DATA/dev-v1.1.json, train-v1.1.json or streamingqa_questions.jsonl)",
    )
    p.add_argument("--test-file", default=None, help="SQuAD validation JSON (default: $FG2U_LM_DATA/dev-v1.1.json)")
    p.add_argument("--documents-file", default=None, help="StreamingQA documents JSONL (when records use evidence_id)")
    p.add_argument("--model-dir", default=None, help="local transformers model folder for the base model (+ tokenizer)")
    p.add_argument(
        "--weight-model-dir", default=None, help="local transformers model folder for the weight-model backbone"
    )
    p.add_argument("--meta-steps", type=int, default=None, help="override the config's number of meta steps")
    p.add_argument("--outer-lr", type=float, default=None, help="override the outer (meta) Adam learning rate")
    p.add_argument(
        "--fg2u-outer-lr",
        type=float,
        default=None,
        help="override the outer Adam learning rate of the forward-mode estimators only (FG2U's estimate has "
        "cosine ~sqrt(b/N) to the gradient, so Adam's progress along it is ~that fraction of RGU's)",
    )
    p.add_argument("--grad-accum", type=int, default=None, help="override the meta-gradient accumulation")
    p.add_argument("--fg2u-directions", type=int, default=None, help="override FG2U's number of directions b")
    p.add_argument("--rgu-num-steps", type=int, default=None, help="override T for RGU (memory-regime runs)")
    p.add_argument("--fg2u-num-steps", type=int, default=None, help="override T for FG2U (memory-regime runs)")
    p.add_argument(
        "--eval-optimizer",
        choices=("adam", "sgd"),
        default=None,
        help="override the evaluation optimizer (sgd with --eval-lr = inner lr replays the meta-training inner loop)",
    )
    p.add_argument("--eval-lr", type=float, default=None, help="override the evaluation learning rate")
    p.add_argument(
        "--weight-backbone",
        choices=WEIGHT_BACKBONES,
        default=None,
        help="override the weight model's backbone: fresh (random init), base (copy of the pre-trained base LM), "
        "base-frozen (that copy fixed, only the head is meta-learned) or base-frozen-readout (only the head's "
        "last layer, 129 parameters, is meta-learned)",
    )
    p.add_argument(
        "--carry",
        action="store_true",
        help="paper protocol: carry the base model across meta steps, reset every 24 (RGU) / 48 (FG2U) documents",
    )
    p.add_argument("--heatmap-docs", type=int, default=4, help="test documents in the token-weight heat map (0: none)")
    p.add_argument("--tag", default=None, help="suffix of the record config label and file name, e.g. sgd-eval")
    p.add_argument("--jobs", type=int, default=1, help="run the seeds in this many parallel processes (1 thread each)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared machine)")
    p.add_argument("--cache-dir", default=None, help="where pre-trained base models are cached (default: <out>/cache)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the pre-trained base model cache")
    p.add_argument("--predictions", action="store_true", help="also write per-question predictions JSONL")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch

    torch.set_num_threads(max(1, args.threads))
    from fg2u.records import append_records
    from fg2u_bench_lm.configs import get_config

    cfg = get_config(args.config)
    if args.meta_steps is not None:
        cfg = cfg.replace(meta_steps=args.meta_steps)
    if args.eval_optimizer is not None:
        cfg = cfg.replace(eval_optimizer=args.eval_optimizer)
    if args.eval_lr is not None:
        cfg = cfg.replace(eval_lr=args.eval_lr)
    if args.outer_lr is not None:
        cfg = cfg.replace(outer_lr=args.outer_lr, fg2u_outer_lr=None)
    if args.fg2u_outer_lr is not None:
        cfg = cfg.replace(fg2u_outer_lr=args.fg2u_outer_lr)
    if args.grad_accum is not None:
        cfg = cfg.replace(grad_accum=args.grad_accum, fg2u_grad_accum=None)
    if args.fg2u_directions is not None:
        cfg = cfg.replace(fg2u_directions=args.fg2u_directions)
    if args.rgu_num_steps is not None:
        cfg = cfg.replace(spec=dataclasses.replace(cfg.spec, num_steps=args.rgu_num_steps))
    if args.fg2u_num_steps is not None:
        cfg = cfg.replace(fg2u_num_steps=args.fg2u_num_steps)
    if args.weight_backbone is not None:
        cfg = cfg.replace(weight_backbone=args.weight_backbone)
    if args.carry:
        cfg = cfg.replace(rgu_carry_reset=24, fg2u_carry_reset=48)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{_label(cfg, args)}.jsonl"
    records = []
    curves: dict[str, list] = {}
    if not args.memory_only and args.jobs > 1 and len(args.seeds) > 1:
        records, curves = _run_seed_jobs(args, argv, cfg, out, path)
    elif not args.memory_only:
        for seed in args.seeds:
            torch.manual_seed(seed)
            setup = prepare(cfg, args, seed, progress=not args.no_progress)
            for name in args.estimators:
                record, rows, extras = run_estimator(cfg, args, setup, name, seed, progress=not args.no_progress)
                append_records(path, [record])
                records.append(record)
                if extras["val"]:
                    curves.setdefault(record.estimator, []).append((seed, extras["val"]))
                if name in ("rgu", "fg2u") and args.heatmap_docs and seed == args.seeds[0]:
                    from fg2u_bench_lm.figures import plot_weight_heatmap

                    png = plot_weight_heatmap(
                        setup.tokenizer,
                        list(setup.splits.test)[: args.heatmap_docs],
                        extras["weight_fn"],
                        out / f"weights_heatmap_{_label(cfg, args)}_{record.estimator}.png",
                        max_doc_tokens=cfg.spec.max_doc_tokens,
                        title=f"{record.estimator} learned token weights, {setup.splits.name}, seed {seed}",
                    )
                    print(f"heat map: {png}")
                if args.predictions:
                    with (out / f"{_label(cfg, args)}_predictions.jsonl").open("a") as f:
                        for row in rows:
                            f.write(json.dumps({"estimator": record.estimator, "seed": seed, **row}) + "\n")
                m = record.metrics
                print(
                    f"seed {seed} {record.estimator:<8} EM {m['em']:.2f}  EM-prefix {m['em_prefix']:.2f}  "
                    f"F1 {m['f1']:.2f}  ({record.wall_time_s:.0f} s)",
                    flush=True,
                )
    if not args.memory_only:
        print(f"\n{_label(cfg, args)}: {len(records)} records appended to {path}")
        if curves:
            from fg2u_bench_lm.figures import plot_meta_validation

            (out / f"meta_val_{_label(cfg, args)}.json").write_text(json.dumps(curves))
            png = plot_meta_validation(curves, out / f"meta_val_{_label(cfg, args)}.png")
            print(f"validation meta-objective plot: {png}")
        print(_table(records))
    if args.memory_sweep or args.memory_only:
        mem = _memory(cfg, args)
        append_records(path, mem)
        print(f"{len(mem)} memory records appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
