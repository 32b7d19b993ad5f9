"""CaMeLS as an :class:`fg2u.UnrolledProblem` (meta-trained by the core's runner:
:class:`fg2u_bench_lm.experiment.CamelsTrial`).

Notation: φ = the weight model's parameters (dict of tensors), θ = the base LM's parameters.

* inner state θ_t (SGD needs no optimiser state), ``θ_0 = init(φ)`` = the base model (independent of φ);
* step: ``θ_{t+1} = θ_t − η ∇_θ ℓ_t(θ_t, φ)`` with the token-weighted NLL of document t

      ℓ_t(θ, φ) = Σ_j w_j(φ; x_t) · nll_j(θ; x_t) / #tokens(x_t),    w = WeightModel_φ(x_t) ≥ 0

  (w_j weights the loss of predicting token j; the gradient is taken with ``torch.func.grad`` so the
  step can be differentiated in forward mode (FG²U) and in reverse mode (RGU));
* outer loss: ``F(θ_T) = mean answer-token NLL of the questions about the T documents
  + c · KL(p_base ‖ p_θT)`` averaged over the positions of unrelated locality texts (c = ``kl_coef``).

The KL term compares with the base model's log-probabilities, which do not depend on φ and are
precomputed into ``outer_batch["base_logprobs"]``.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence

import torch
from torch.func import functional_call

from fg2u import UnrolledProblem
from fg2u_bench_lm.data import Document, QAPair
from fg2u_bench_lm.models import token_nll
from fg2u_bench_lm.tokenizer import encode_documents, encode_qa, encode_texts

__all__ = [
    "CamelsSpec",
    "weighted_document_loss",
    "make_inner_batches",
    "make_outer_batch",
    "make_problem",
    "make_task",
]

Params = dict[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class CamelsSpec:
    """Sizes of one CaMeLS meta-step (see :func:`make_task`).

    Attributes:
      num_steps: T, documents (= inner SGD steps) per meta step.
      inner_lr: η of the inner SGD.
      kl_coef: c, weight of the locality KL term.
      max_doc_tokens: documents are truncated / padded to this many tokens.
      max_qa_tokens: QA rows are truncated / padded to this many tokens.
      questions_per_step: at most this many questions (sampled from the T documents) in the outer loss.
      locality_texts: number of unrelated texts in the KL term.
    """

    num_steps: int = 6
    inner_lr: float = 5e-4
    kl_coef: float = 0.1
    max_doc_tokens: int = 96
    max_qa_tokens: int = 40
    questions_per_step: int = 12
    locality_texts: int = 4


def _as_rows(x: torch.Tensor) -> torch.Tensor:
    return x if x.dim() == 2 else x.unsqueeze(0)


def weighted_document_loss(
    base: torch.nn.Module,
    theta: Mapping[str, torch.Tensor],
    weights: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """``Σ_j w_j nll_j / #predicted tokens`` for documents ``input_ids (B, L)`` and weights ``(B, L)``.

    ``weights[:, j]`` multiplies the NLL of token j (token 0 is never predicted).
    """
    nll = token_nll(base, theta, input_ids, attention_mask)
    count = attention_mask[:, 1:].sum().clamp(min=1).to(nll.dtype)
    return (weights[:, 1:] * nll).sum() / count


def make_inner_batches(tokenizer, docs: Sequence[Document], spec: CamelsSpec) -> dict[str, torch.Tensor]:
    """``{"input_ids", "attention_mask"}`` of shape ``(T, max_doc_tokens)``: document t is step t's batch."""
    return encode_documents(tokenizer, docs, spec.max_doc_tokens, pad_to=spec.max_doc_tokens)


def make_outer_batch(
    base: torch.nn.Module,
    theta0: Mapping[str, torch.Tensor],
    tokenizer,
    questions: Sequence[QAPair],
    locality: Sequence[str],
    spec: CamelsSpec,
) -> dict[str, torch.Tensor]:
    """QA rows (``qa_ids``, ``qa_mask``, ``answer_mask``), locality rows (``loc_ids``, ``loc_mask``) and
    the base model's log-probabilities on the locality rows ``base_logprobs (M, L−1, V)``."""
    qa = encode_qa(tokenizer, questions, spec.max_qa_tokens)
    loc = encode_texts(tokenizer, locality, spec.max_doc_tokens)
    with torch.no_grad():
        logits = functional_call(
            base, dict(theta0), (loc["input_ids"],), {"attention_mask": loc["attention_mask"]}
        ).logits
        base_logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
    return {
        "qa_ids": qa["input_ids"],
        "qa_mask": qa["attention_mask"],
        "answer_mask": qa["answer_mask"],
        "loc_ids": loc["input_ids"],
        "loc_mask": loc["attention_mask"],
        "base_logprobs": base_logprobs,
    }


def qa_nll(
    base: torch.nn.Module,
    theta: Mapping[str, torch.Tensor],
    qa_ids: torch.Tensor,
    qa_mask: torch.Tensor,
    answer_mask: torch.Tensor,
) -> torch.Tensor:
    """Mean NLL of the answer tokens given the question (scalar)."""
    nll = token_nll(base, theta, qa_ids, qa_mask)
    am = answer_mask[:, 1:].to(nll.dtype)
    return (nll * am).sum() / am.sum().clamp(min=1)


def locality_kl(
    base: torch.nn.Module,
    theta: Mapping[str, torch.Tensor],
    loc_ids: torch.Tensor,
    loc_mask: torch.Tensor,
    base_logprobs: torch.Tensor,
) -> torch.Tensor:
    """``KL(p_base ‖ p_θ)`` of the next-token distributions, averaged over the valid positions."""
    logits = functional_call(base, dict(theta), (loc_ids,), {"attention_mask": loc_mask}).logits[:, :-1]
    logp = torch.log_softmax(logits, dim=-1)
    kl = (base_logprobs.exp() * (base_logprobs - logp)).sum(-1)
    valid = loc_mask[:, 1:].to(kl.dtype)
    return (kl * valid).sum() / valid.sum().clamp(min=1)


def make_problem(
    base: torch.nn.Module,
    weight_model: torch.nn.Module,
    theta0: Mapping[str, torch.Tensor],
    inner_batches: Mapping[str, torch.Tensor],
    outer_batch: Mapping[str, torch.Tensor],
    *,
    inner_lr: float,
    kl_coef: float,
) -> UnrolledProblem:
    """The CaMeLS bi-level problem (see the module docstring). ``T`` = ``inner_batches`` leading axis.

    The models are only used for their architecture (``functional_call``); their own parameters are
    ignored. ``theta0`` must not require grad.
    """
    theta0 = {k: v.detach() for k, v in theta0.items()}
    num_steps = int(inner_batches["input_ids"].shape[0])

    def init(phi: Params) -> Params:
        return dict(theta0)

    def step(theta: Params, phi: Params, batch: Mapping[str, torch.Tensor]) -> Params:
        ids, mask = _as_rows(batch["input_ids"]), _as_rows(batch["attention_mask"])
        weights = functional_call(weight_model, phi, (ids, mask))
        grads = torch.func.grad(lambda th: weighted_document_loss(base, th, weights, ids, mask))(theta)
        return {k: theta[k] - inner_lr * grads[k] for k in theta}

    def outer_loss(theta: Params, phi: Params, ob: Mapping[str, torch.Tensor]) -> torch.Tensor:
        loss = qa_nll(base, theta, ob["qa_ids"], ob["qa_mask"], ob["answer_mask"])
        if kl_coef:
            loss = loss + kl_coef * locality_kl(base, theta, ob["loc_ids"], ob["loc_mask"], ob["base_logprobs"])
        return loss

    return UnrolledProblem(
        init=init,
        step=step,
        outer_loss=outer_loss,
        num_steps=num_steps,
        inner_batches=dict(inner_batches),
        outer_batch=dict(outer_batch),
    )


def make_task(
    base: torch.nn.Module,
    weight_model: torch.nn.Module,
    theta0: Mapping[str, torch.Tensor],
    tokenizer,
    docs: Sequence[Document],
    locality: Sequence[str],
    spec: CamelsSpec,
    rng: random.Random,
    theta_start: Mapping[str, torch.Tensor] | None = None,
) -> UnrolledProblem:
    """One meta-step problem: ``spec.num_steps`` documents, up to ``questions_per_step`` of their
    questions, ``spec.locality_texts`` locality texts — all drawn with ``rng`` from the given pools.

    The inner loop starts from ``theta_start`` (default ``theta0``, the pre-trained base model); the
    locality KL always compares with ``theta0``."""
    if len(docs) < spec.num_steps:
        raise ValueError(f"need at least T={spec.num_steps} documents in the stream, got {len(docs)}")
    chosen = rng.sample(list(docs), spec.num_steps)
    questions = [q for d in chosen for q in d.qa]
    questions = rng.sample(questions, min(spec.questions_per_step, len(questions)))
    loc = rng.sample(list(locality), min(spec.locality_texts, len(locality))) if spec.kl_coef else list(locality[:1])
    inner = make_inner_batches(tokenizer, chosen, spec)
    outer = make_outer_batch(base, theta0, tokenizer, questions, loc, spec)
    start = theta0 if theta_start is None else theta_start
    return make_problem(base, weight_model, start, inner, outer, inner_lr=spec.inner_lr, kl_coef=spec.kl_coef)
