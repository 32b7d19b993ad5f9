"""Evaluation: adapt the base model on a document stream, answer the questions, score EM and F1.

* :func:`normalize_answer` — SQuAD normalisation (lower case, drop punctuation and the articles
  a/an/the, collapse white space).
* :func:`exact_match` — strict EM: normalised strings equal.
* :func:`prefix_exact_match` — CaMeLS-style lenient EM: the normalised prediction, cut to the gold
  answer's number of normalised words, equals the gold answer (a prediction that starts with the
  answer and then rambles on counts).
* :func:`token_f1` — SQuAD token F1 (bag of normalised words).
  Each takes a prediction and a list of gold answers and returns the max over the gold answers.
* :func:`adapt_model` — one pass of Adam over the document stream (batch 1) on the token-weighted NLL,
  weights from a weight model or uniform.
* :func:`greedy_answer` — greedy decoding of up to ``max_new_tokens`` tokens after the QA prompt.
* :func:`evaluate_stream` — the whole protocol over a test stream in chunks (model reset per chunk).

An adaptation whose loss or parameters stop being finite raises :class:`AdaptationDiverged` (a too large
learning rate would otherwise score as a normal run that answers nothing).
"""

from __future__ import annotations

import collections
import copy
import math
import re
import string
from collections.abc import Callable, Sequence

import torch

from fg2u_bench_lm.data import Document
from fg2u_bench_lm.models import token_nll
from fg2u_bench_lm.tokenizer import encode_texts, qa_prompt

__all__ = [
    "normalize_answer",
    "exact_match",
    "prefix_exact_match",
    "token_f1",
    "score_predictions",
    "adapt_model",
    "AdaptationDiverged",
    "OracleWeights",
    "greedy_answer",
    "evaluate_stream",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower → strip punctuation → drop articles → single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _check_golds(golds: Sequence[str]) -> Sequence[str]:
    if isinstance(golds, str):
        golds = [golds]
    if not golds:
        raise ValueError("need at least one gold answer")
    return golds


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals some normalised gold answer, else 0.0."""
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(g) for g in _check_golds(golds)))


def prefix_exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 if the prediction's first k normalised words equal a gold answer's k normalised words."""
    words = normalize_answer(prediction).split()
    for g in _check_golds(golds):
        gw = normalize_answer(g).split()
        if words[: len(gw)] == gw:
            return 1.0
    return 0.0


def _f1(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((collections.Counter(p) & collections.Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1 (harmonic mean of word precision and recall), max over the gold answers."""
    return max(_f1(prediction, g) for g in _check_golds(golds))


def score_predictions(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """``{"em", "em_prefix", "f1"}`` in percent (means over questions) and ``"num_questions"``."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} questions")
    n = max(1, len(predictions))
    return {
        "em": 100.0 * sum(exact_match(p, g) for p, g in zip(predictions, golds)) / n,
        "em_prefix": 100.0 * sum(prefix_exact_match(p, g) for p, g in zip(predictions, golds)) / n,
        "f1": 100.0 * sum(token_f1(p, g) for p, g in zip(predictions, golds)) / n,
        "num_questions": float(len(predictions)),
    }


WeightFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class AdaptationDiverged(FloatingPointError):
    """The adaptation loss or the adapted parameters became NaN or infinite (message: where)."""


def uniform_weights(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Weight 1 on every real token (plain fine-tuning), 0 on padding."""
    return attention_mask.to(torch.float32)


class OracleWeights:
    """The oracle token weighting: 1 on the answer-bearing tokens of a document, 0 elsewhere.

    Needs the documents' ``fact_spans`` (``scope="fact"``, the fact sentences) or ``answer_spans``
    (``scope="answer"``) — known for the synthetic streams only. :func:`adapt_model` calls
    ``document_weights(tokenizer, [doc], max_doc_tokens) -> (1, L)`` instead of the token-only call.
    """

    def __init__(self, scope: str = "fact"):
        if scope not in ("fact", "answer"):
            raise ValueError(f"scope must be 'fact' or 'answer', got {scope!r}")
        self.scope = scope

    def document_weights(self, tokenizer, docs: Sequence[Document], max_doc_tokens: int) -> torch.Tensor:
        from fg2u_bench_lm.tokenizer import span_token_mask

        if not all(d.fact_spans for d in docs):
            raise ValueError(
                "the oracle weighting needs documents with known fact spans (the synthetic streams); real data has none"
            )
        return span_token_mask(tokenizer, docs, max_doc_tokens, scope=self.scope)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise TypeError("OracleWeights needs the documents: use document_weights(tokenizer, docs, max_doc_tokens)")


def adapt_model(
    model: torch.nn.Module,
    tokenizer,
    docs: Sequence[Document],
    weight_fn: WeightFn,
    *,
    lr: float,
    max_doc_tokens: int,
    optimizer: str = "adam",
    steps_per_document: int = 1,
) -> torch.nn.Module:
    """A copy of ``model`` fine-tuned on ``docs`` one at a time (batch 1, one pass) on the weighted NLL
    ``Σ_j w_j nll_j / #tokens``; the weights are computed once per document without gradient.

    Raises :class:`AdaptationDiverged` when a weight, a loss or (at the end) a parameter is not finite."""
    adapted = copy.deepcopy(model)
    adapted.train()
    params = [p for p in adapted.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    for k, doc in enumerate(docs):
        batch = encode_texts(tokenizer, [doc.text], max_doc_tokens)
        with torch.no_grad():
            if hasattr(weight_fn, "document_weights"):
                w = weight_fn.document_weights(tokenizer, [doc], max_doc_tokens).detach()
            else:
                w = weight_fn(batch["input_ids"], batch["attention_mask"]).detach()
        if not bool(torch.isfinite(w).all()):
            raise AdaptationDiverged(f"the token weights of document {k} ({doc.doc_id}) are not finite")
        for _ in range(steps_per_document):
            nll = token_nll(adapted, None, batch["input_ids"], batch["attention_mask"])
            loss = (w[:, 1:] * nll).sum() / batch["attention_mask"][:, 1:].sum().clamp(min=1)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise AdaptationDiverged(f"the adaptation loss became {value} on document {k} ({doc.doc_id})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        if not all(bool(torch.isfinite(p).all()) for p in params):
            raise AdaptationDiverged(f"the adapted parameters are not finite after {len(docs)} document(s)")
    return adapted.eval()


@torch.no_grad()
def greedy_answer(
    model: torch.nn.Module, tokenizer, question: str, *, max_new_tokens: int = 16, max_prompt_tokens: int = 64
) -> str:
    """Greedy continuation of the QA prompt, stopped at eos or after ``max_new_tokens`` tokens."""
    prompt = tokenizer(qa_prompt(question), add_special_tokens=False)["input_ids"][-max_prompt_tokens:]
    ids = torch.tensor([prompt], dtype=torch.long)
    out: list[int] = []
    past = None
    step_input = ids
    limit = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 1024)
    for _ in range(max_new_tokens):
        if ids.shape[1] + len(out) >= limit:
            break
        result = model(step_input, past_key_values=past, use_cache=True)
        past = result.past_key_values
        token = int(result.logits[0, -1].argmax())
        if token == tokenizer.eos_token_id:
            break
        out.append(token)
        step_input = torch.tensor([[token]], dtype=torch.long)
    return tokenizer.decode(out, skip_special_tokens=True).strip()


def evaluate_stream(
    model: torch.nn.Module,
    tokenizer,
    docs: Sequence[Document],
    weight_fn: WeightFn,
    *,
    lr: float,
    max_doc_tokens: int,
    chunk_size: int,
    max_new_tokens: int = 16,
    optimizer: str = "adam",
    adapt: bool = True,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """Adapt-then-answer over ``docs`` in chunks of ``chunk_size`` documents.

    For each chunk: reset to ``model``, adapt on the chunk's documents (:func:`adapt_model`), answer all
    their questions greedily (``adapt=False``: answer with the unadapted model, the closed-book
    reference). Returns (:func:`score_predictions` over all questions, per-question rows).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    predictions, golds, rows = [], [], []
    for start in range(0, len(docs), chunk_size):
        chunk = docs[start : start + chunk_size]
        adapted = (
            adapt_model(model, tokenizer, chunk, weight_fn, lr=lr, max_doc_tokens=max_doc_tokens, optimizer=optimizer)
            if adapt
            else model.eval()
        )
        for d in chunk:
            for qa in d.qa:
                pred = greedy_answer(adapted, tokenizer, qa.question, max_new_tokens=max_new_tokens)
                predictions.append(pred)
                golds.append(qa.answers)
                rows.append(
                    {"doc_id": d.doc_id, "question": qa.question, "prediction": pred, "answers": list(qa.answers)}
                )
        if progress is not None:
            progress(len(chunk))
    return score_predictions(predictions, golds), rows
