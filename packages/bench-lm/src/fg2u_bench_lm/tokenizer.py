"""Tokenizers (built locally, nothing downloaded) and the tensor encodings of documents and QA pairs.

* :func:`train_tokenizer` — a byte-level BPE tokenizer trained with the ``tokenizers`` library on the
  benchmark's own texts, wrapped as ``transformers.PreTrainedTokenizerFast``. Byte-level BPE decodes
  back to the exact input text, so generated answers compare cleanly with the gold strings.
* :func:`load_local_tokenizer` — the tokenizer of a local transformers model directory.
* :func:`encode_documents` / :func:`encode_qa` / :func:`encode_texts` — right-padded ``LongTensor``
  batches with attention masks. The QA format is ``"question: {q} answer:" + " {a}" + eos``; the answer
  mask marks the answer and eos tokens (the tokens the QA loss is taken on).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from fg2u_bench_lm.data import Document, QAPair

__all__ = [
    "train_tokenizer",
    "load_local_tokenizer",
    "qa_prompt",
    "encode_texts",
    "encode_documents",
    "encode_qa",
    "span_token_mask",
]

PAD, EOS = "<pad>", "<eos>"


def train_tokenizer(texts: Sequence[str], vocab_size: int = 2048, min_frequency: int = 2):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts`` (pad ``<pad>``, eos ``<eos>``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not texts:
        raise ValueError("train_tokenizer needs at least one text")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, bos_token=EOS, unk_token=None)


def load_local_tokenizer(model_dir: str | os.PathLike):
    """The tokenizer saved in a local transformers model directory (no network); pad defaults to eos."""
    from transformers import AutoTokenizer

    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(
            f"model directory {path} does not exist; pass a local transformers model folder "
            "(with config.json, weights and tokenizer files) — nothing can be downloaded here"
        )
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tok.eos_token is None:
        raise ValueError(f"the tokenizer in {path} has no eos token; the QA format needs one")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def qa_prompt(question: str) -> str:
    """The prompt the base model answers: ``"question: {q} answer:"``."""
    return f"question: {question.strip()} answer:"


def _pad(rows: list[list[int]], pad_id: int, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [r[:max_length] for r in rows]
    length = max(1, max(len(r) for r in rows))
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def encode_texts(
    tokenizer, texts: Sequence[str], max_length: int, pad_to: int | None = None
) -> dict[str, torch.Tensor]:
    """``{"input_ids": (N, L), "attention_mask": (N, L)}``, right-padded, truncated to ``max_length``.

    ``pad_to`` fixes L (so several batches stack); otherwise L = the longest row.
    """
    if not texts:
        raise ValueError("encode_texts needs at least one text")
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    ids, mask = _pad(rows, tokenizer.pad_token_id, max_length)
    if pad_to is not None:
        if pad_to < ids.shape[1]:
            raise ValueError(f"pad_to={pad_to} is shorter than the longest row ({ids.shape[1]})")
        extra = pad_to - ids.shape[1]
        ids = torch.nn.functional.pad(ids, (0, extra), value=tokenizer.pad_token_id)
        mask = torch.nn.functional.pad(mask, (0, extra), value=0)
    return {"input_ids": ids, "attention_mask": mask}


def encode_documents(
    tokenizer, docs: Sequence[Document], max_length: int, pad_to: int | None = None
) -> dict[str, torch.Tensor]:
    """The document texts as :func:`encode_texts` batches."""
    return encode_texts(tokenizer, [d.text for d in docs], max_length, pad_to)


def encode_qa(tokenizer, pairs: Sequence[QAPair], max_length: int) -> dict[str, torch.Tensor]:
    """QA-format rows: ``input_ids``, ``attention_mask`` and ``answer_mask`` (all ``(N, L)``).

    ``answer_mask[i, j] = 1`` where token j belongs to the answer (or the closing eos), i.e. the tokens
    whose NLL is the QA loss. Prompts are truncated from the left when a row would exceed ``max_length``.
    """
    if not pairs:
        raise ValueError("encode_qa needs at least one QA pair")
    rows, answer_spans = [], []
    for qa in pairs:
        prompt = tokenizer(qa_prompt(qa.question), add_special_tokens=False)["input_ids"]
        answer = tokenizer(" " + qa.answer.strip(), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        answer = answer[: max_length - 1]
        prompt = prompt[-(max_length - len(answer)) :]
        rows.append(prompt + answer)
        answer_spans.append((len(prompt), len(prompt) + len(answer)))
    ids, mask = _pad(rows, tokenizer.pad_token_id, max_length)
    answer_mask = torch.zeros_like(mask)
    for i, (a, b) in enumerate(answer_spans):
        answer_mask[i, a:b] = 1
    return {"input_ids": ids, "attention_mask": mask, "answer_mask": answer_mask}


def span_token_mask(
    tokenizer, docs: Sequence[Document], max_length: int, pad_to: int | None = None, scope: str = "fact"
) -> torch.Tensor:
    """``(N, L)`` float mask, aligned with :func:`encode_documents`: 1 on tokens whose characters overlap
    an answer-bearing span of the document (``scope="fact"``: ``Document.fact_spans``, the fact
    sentences; ``"answer"``: ``Document.answer_spans``, the answer strings), 0 elsewhere and on padding.

    This is the oracle token weighting (1 on the answer-bearing tokens, 0 elsewhere). Documents without
    spans (real data) get an all-zero row.
    """
    if scope not in ("fact", "answer"):
        raise ValueError(f"scope must be 'fact' or 'answer', got {scope!r}")
    enc = encode_documents(tokenizer, docs, max_length, pad_to)
    mask = torch.zeros(enc["input_ids"].shape, dtype=torch.float32)
    for i, d in enumerate(docs):
        spans = d.fact_spans if scope == "fact" else d.answer_spans
        offsets = tokenizer(d.text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"][
            :max_length
        ]
        for j, (a, b) in enumerate(offsets):
            if any(a < e and s < b for s, e in spans):
                mask[i, j] = 1.0
    return mask
