"""One seed's data streams, tokenizer and QA-pre-trained base model, shared by every method of the seed.

* :class:`LMRun` — a config with the run's data source, files, cache folder and warm starts (what
  :meth:`fg2u_bench_lm.experiment.Camels.configure` returns).
* :func:`load_splits` — the synthetic stream, or real files capped to the config's split sizes.
* :func:`prepare_seed` — :class:`SeedSetup`: the splits, a tokenizer trained on them and the base model
  pre-trained on the QA format (:mod:`fg2u_bench_lm.pretrain`), cached on disk under a key of every setting
  and source file that shapes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from fg2u.experiment import progress

from . import data, models, pretrain, tokenizer
from .configs import LMConfig

__all__ = ["LMRun", "SeedSetup", "load_splits", "dataset_label", "cache_key", "prepare_seed", "SQUAD_DEV_LABEL"]

SQUAD_DEV_LABEL = "squad-v1.1-dev-article-split"
"""Data set label of the real-text stream: SQuAD v1.1 dev only, split by article (not CaMeLS's SQuAD-Seq)."""


@dataclasses.dataclass(frozen=True)
class LMRun:
    """A :class:`~fg2u_bench_lm.configs.LMConfig` with the run's data source, files, cache and warm start.

    ``data_files`` are resolved paths (checked in :meth:`Camels.configure`); ``warm_start`` maps each seed
    to its weight file; ``memory_sweep`` selects the ``memory`` task."""

    config: LMConfig
    data: str = "synthetic"
    data_files: Mapping[str, str] = dataclasses.field(default_factory=dict)
    model_dir: str | None = None
    weight_model_dir: str | None = None
    cache_dir: str | None = None
    warm_start: Mapping[int, str] = dataclasses.field(default_factory=dict)
    warm_start_pattern: str | None = None
    memory_sweep: bool = False
    threads: int = 1
    heatmap_docs: int = 4
    predictions: bool = False
    first_seed: int = 0

    @property
    def name(self) -> str:
        return self.config.name

    def settings(self) -> dict[str, Any]:
        c = self.config
        settings = c.meta_settings() if not self.memory_sweep else {"memory_budget_bytes": c.memory_budget_bytes}
        if self.warm_start_pattern is not None and not self.memory_sweep:
            settings["warm_start"] = self.warm_start_pattern
        return settings


def load_splits(run: LMRun, seed: int) -> Any:
    """The data streams of ``seed``: the synthetic stream, or the real files, capped to the config's split
    sizes."""
    c = run.config
    if run.data == "synthetic":
        return data.make_synthetic_splits(
            num_qa_tune=c.num_qa_tune,
            num_meta_train=c.num_meta_train,
            num_meta_val=c.num_meta_val,
            num_test=c.num_test,
            num_locality=c.num_locality,
            seed=seed,
            questions_per_document=c.questions_per_document,
            stream=c.stream,
            facts_per_document=c.facts_per_document,
            distractor_sentences=tuple(c.distractor_sentences),
        )
    files = run.data_files
    if run.data == "squad-dev":
        splits = data.squad_dev_article_splits(files["data"], seed=seed, label=SQUAD_DEV_LABEL)
    elif run.data == "squad":
        splits = data.camels_squad_splits(files["data"], files["test"], num_locality=c.num_locality)
    else:
        docs = data.load_streamingqa_jsonl(files["data"], files.get("documents"))
        qa_tune, meta_train, meta_val, test, loc = data.split_documents(docs, (0.4, 0.4, 0.05, 0.1, 0.05), seed)
        splits = data.Splits(qa_tune, meta_train, meta_val, test, tuple(d.text for d in loc), "streamingqa")
    rng = random.Random(seed)

    def cap(docs: Sequence[Any], n: int | None) -> tuple:
        docs = list(docs)
        return tuple(rng.sample(docs, n)) if n is not None and len(docs) > n else tuple(docs)

    return dataclasses.replace(
        splits,
        qa_tune=cap(splits.qa_tune, c.num_qa_tune),
        meta_train=cap(splits.meta_train, c.num_meta_train),
        meta_val=cap(splits.meta_val, c.num_meta_val),
        test=cap(splits.test, c.num_test),
        locality=tuple(list(splits.locality)[: c.num_locality]),
    )


def dataset_label(run: LMRun) -> str:
    if run.data == "synthetic":
        return "synthetic-facts" if run.config.stream == "dense" else "synthetic-sparse-facts"
    return {"squad-dev": SQUAD_DEV_LABEL, "squad": "squad-seq", "streamingqa": "streamingqa"}[run.data]


@dataclasses.dataclass
class SeedSetup:
    """One seed's data, tokenizer and QA-pre-trained base model (shared by every method of the seed)."""

    splits: Any
    tokenizer: Any
    base: Any
    pretrain_loss: float
    pretrain_seconds: float


def cache_key(run: LMRun, seed: int) -> str:
    c = run.config
    fields = {
        k: v
        for k, v in c.to_dict().items()
        if k.startswith(("num_", "questions", "vocab", "model", "n_pos", "pretrain", "stream", "facts", "distract"))
    }
    fields.update(max_doc_tokens=c.spec.max_doc_tokens, max_qa_tokens=c.spec.max_qa_tokens)
    fields.update(data=run.data, data_files=dict(run.data_files), model_dir=run.model_dir, seed=seed)
    fields["code"] = _code_digest()  # a change to the data, tokenizer, model or pre-training code retrains
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _code_digest() -> str:
    folder = Path(__file__).parent
    sources = b"".join((folder / f"{name}.py").read_bytes() for name in ("data", "tokenizer", "models", "pretrain"))
    return hashlib.sha256(sources).hexdigest()[:16]


def prepare_seed(run: LMRun, seed: int, *, show_progress: bool = True) -> SeedSetup:
    """Data, tokenizer and the QA-pre-trained base model of ``seed`` (read from / written to the cache)."""
    c = run.config
    splits = load_splits(run, seed)
    cache = Path(run.cache_dir) / f"base-{cache_key(run, seed)}" if run.cache_dir else None
    if run.model_dir is not None:
        tok = tokenizer.load_local_tokenizer(run.model_dir)
    elif cache is not None and (cache / "tokenizer.json").exists():
        from transformers import PreTrainedTokenizerFast  # noqa: PLC0415 (as tokenizer.py: transformers on use)

        tok = PreTrainedTokenizerFast.from_pretrained(str(cache))
    else:
        tok = tokenizer.train_tokenizer(splits.all_texts(), vocab_size=c.vocab_size)
    base = models.build_base_model(run.model_dir or c.model_size, tok, c.n_positions, seed=seed)
    if cache is not None and (cache / "base.pt").exists() and (cache / "pretrain.json").exists():
        base.load_state_dict(torch.load(cache / "base.pt"))
        meta = json.loads((cache / "pretrain.json").read_text())
        return SeedSetup(splits, tok, base, meta["final_loss"], meta["seconds"])
    bar = progress(total=c.pretrain_steps, desc=f"pretrain seed {seed}", enabled=show_progress)
    result = pretrain.pretrain_base_model(
        base,
        tok,
        splits.qa_tune,
        steps=c.pretrain_steps,
        lr=c.pretrain_lr,
        batch_size=c.pretrain_batch,
        max_doc_tokens=c.spec.max_doc_tokens,
        max_qa_tokens=c.spec.max_qa_tokens,
        seed=seed,
        progress=lambda step, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")),
    )
    bar.close()
    final = statistics.fmean(result["losses"][-20:])
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(str(cache))
        torch.save(base.state_dict(), cache / "base.pt")
        (cache / "pretrain.json").write_text(json.dumps({"final_loss": final, "seconds": result["seconds"]}))
    return SeedSetup(splits, tok, base, final, result["seconds"])
