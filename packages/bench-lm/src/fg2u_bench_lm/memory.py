"""The builder of the memory sweep: one CaMeLS meta-gradient of depth T, measured in a fresh interpreter.

``python -m fg2u_bench_lm --config cpu --memory-sweep`` runs, for each estimator and each T of the config's
``memory_steps``, :func:`fg2u.experiment.memory.measure_in_subprocess` on :func:`build_meta_gradient`: the
child builds the config's tokenizer, base and weight models and one meta-training task of T documents, runs
a warm-up meta-gradient at T = 1 (kernels, allocator pools), and reports the growth of its peak resident set
size during one meta-gradient at T — the memory the estimator needs on top of models, data and libraries
(record memory measure ``"peak_rss_growth"``). RGU stores every inner step for the backward pass (∝ T),
RGUCheckpointed segment boundaries and one segment (∝ √T), FG²U only (θ_t, ∂θ_t·V) (flat in T).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import fg2u.torch as backend
from fg2u.experiment.spec import build

from . import camels, data, models, tokenizer
from .configs import LMConfig

__all__ = ["build_meta_gradient"]


def build_meta_gradient(
    config: dict[str, Any],
    spec: str,
    num_steps: int,
    seed: int = 0,
    model_dir: str | None = None,
    weight_model_dir: str | None = None,
) -> tuple[Callable[[], Any], Callable[[], Any], dict[str, Any]]:
    """``(call, warmup, info)`` for :func:`fg2u.experiment.memory.measure_in_subprocess`.

    Args:
      config: an :class:`~fg2u_bench_lm.configs.LMConfig` as :meth:`~fg2u_bench_lm.configs.LMConfig.to_dict`.
      spec: the completed estimator spec (``"fg2u:num_directions=4,chunk_size=none"``).
      num_steps: T of the measured meta-gradient.
      seed: seeds the documents, the tokenizer's corpus, the models and the estimator's key.

    ``call()`` is one meta-gradient ``estimator(problem, φ, seed)`` on T documents; ``warmup()`` the same at
    T = 1; ``info`` the parameter counts (filled in by the warm-up with its outer loss, then by ``call``).
    """
    cfg = LMConfig.from_dict(config)
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
    if model_dir is not None:
        tok = tokenizer.load_local_tokenizer(model_dir)
    else:
        corpus = splits.all_texts() + [d.text for d in data.generate_sparse_documents(200, seed + 1)]
        tok = tokenizer.train_tokenizer(corpus, vocab_size=cfg.vocab_size)
    base = models.build_base_model(model_dir or cfg.model_size, tok, cfg.n_positions, seed=seed)
    weight_model = models.build_weight_model(
        weight_model_dir or cfg.weight_model_size,
        tok,
        cfg.n_positions,
        seed=seed,
        backbone=cfg.weight_backbone,
        base=base,
    )
    theta0 = models.param_dict(base)
    phi = {k: p.detach() for k, p in weight_model.named_parameters() if p.requires_grad}
    estimator = build(spec, backend.BACKEND)

    def task(t: int) -> Any:
        task_spec = camels.CamelsSpec(**{**cfg.spec.__dict__, "num_steps": t})
        docs, locality = splits.meta_train, splits.locality
        return camels.make_task(base, weight_model, theta0, tok, docs, locality, task_spec, random.Random(seed))

    problem = task(num_steps)
    info: dict[str, Any] = {
        "base_params": models.count_parameters(theta0),
        "weight_params": models.count_parameters(phi),
    }

    def call() -> None:
        _, aux = estimator(problem, phi, seed)
        info["outer_loss"] = float(aux.outer_loss)

    def warmup() -> None:
        estimator(task(1), phi, seed)

    return call, warmup, info
