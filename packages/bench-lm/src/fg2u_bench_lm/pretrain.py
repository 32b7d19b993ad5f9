"""Pre-training of the base model by the benchmark itself (no pretrained weights can be downloaded).

The base model learns (a) the language of the documents (next-token NLL on the QA-tune documents) and
(b) the QA format: ``"question: {q} answer: {a}<eos>"`` with the loss on the answer tokens. The facts of
the QA-tune documents are seen in both forms, so the model learns that reading a document helps with
answering — without ever seeing the meta-train / test documents.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence

import torch

from fg2u_bench_lm.data import Document
from fg2u_bench_lm.models import token_nll
from fg2u_bench_lm.tokenizer import encode_qa, encode_texts

__all__ = ["pretrain_base_model"]


def pretrain_base_model(
    model: torch.nn.Module,
    tokenizer,
    docs: Sequence[Document],
    *,
    steps: int,
    lr: float,
    batch_size: int = 16,
    max_doc_tokens: int = 96,
    max_qa_tokens: int = 40,
    document_fraction: float = 0.5,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> dict:
    """AdamW (``lr``, cosine decay) for ``steps`` steps in place; returns ``{"losses", "seconds"}``.

    Each step is a document batch (probability ``document_fraction``; loss on every token) or a QA batch
    (loss on the answer tokens only).
    """
    if not docs:
        raise ValueError("pretraining needs at least one QA-tune document")
    rng = random.Random(seed)
    qa = [q for d in docs for q in d.qa]
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        if rng.random() < document_fraction:
            batch = encode_texts(
                tokenizer, [d.text for d in rng.sample(list(docs), min(batch_size, len(docs)))], max_doc_tokens
            )
            nll = token_nll(model, None, batch["input_ids"], batch["attention_mask"])
            loss = nll.sum() / batch["attention_mask"][:, 1:].sum().clamp(min=1)
        else:
            batch = encode_qa(tokenizer, rng.sample(qa, min(batch_size, len(qa))), max_qa_tokens)
            nll = token_nll(model, None, batch["input_ids"], batch["attention_mask"])
            am = batch["answer_mask"][:, 1:].to(nll.dtype)
            loss = (nll * am).sum() / am.sum().clamp(min=1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress is not None:
            progress(step, losses[-1])
    model.eval()
    return {"losses": losses, "seconds": time.perf_counter() - start}
