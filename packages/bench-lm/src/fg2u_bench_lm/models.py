"""Base language models and the CaMeLS token-weight model (GPT-2 architecture from transformers).

Models are used functionally: parameters live in plain ``dict[str, Tensor]`` (:func:`param_dict`) and
are applied with ``torch.func.functional_call``, so the whole inner loop can be differentiated in
forward mode (FG²U) or reverse mode (RGU).

Sizes (:data:`MODEL_SIZES`) go from ``tiny`` (seconds on a CPU) to the ``distilgpt2`` and ``gpt2``
shapes. Dropout is 0 and attention is the plain ("eager") implementation so every op has forward-mode
and vmap rules.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call

__all__ = [
    "MODEL_SIZES",
    "gpt2_config",
    "build_base_model",
    "WeightModel",
    "build_weight_model",
    "WEIGHT_BACKBONES",
    "param_dict",
    "token_nll",
    "count_parameters",
]

MODEL_SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(n_embd=64, n_layer=2, n_head=2),
    "mini": dict(n_embd=128, n_layer=3, n_head=4),
    "small": dict(n_embd=256, n_layer=4, n_head=4),
    "distilgpt2": dict(n_embd=768, n_layer=6, n_head=12),
    "gpt2": dict(n_embd=768, n_layer=12, n_head=12),
}


def gpt2_config(
    size: str, vocab_size: int, n_positions: int, *, pad_token_id: int | None = None, eos_token_id: int | None = None
):
    """A ``GPT2Config`` of one of :data:`MODEL_SIZES`, dropout 0, eager attention."""
    from transformers import GPT2Config

    if size not in MODEL_SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(MODEL_SIZES)} or pass a local model dir")
    cfg = GPT2Config(
        vocab_size=vocab_size,
        n_positions=n_positions,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        **MODEL_SIZES[size],
    )
    cfg._attn_implementation = "eager"
    return cfg


def _no_dropout(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return model.eval()


def build_base_model(size_or_dir: str | os.PathLike, tokenizer, n_positions: int = 256, seed: int = 0):
    """A causal LM: a fresh GPT-2 of the given size (seeded init), or a local pretrained directory.

    A directory path (an existing folder) is loaded with ``AutoModelForCausalLM.from_pretrained``
    (``local_files_only=True``, eager attention, dropout disabled).
    """
    from transformers import AutoModelForCausalLM, GPT2LMHeadModel

    if Path(str(size_or_dir)).is_dir():
        model = AutoModelForCausalLM.from_pretrained(
            str(size_or_dir), local_files_only=True, attn_implementation="eager"
        )
        return _no_dropout(model)
    torch.manual_seed(seed)
    cfg = gpt2_config(
        str(size_or_dir),
        len(tokenizer),
        n_positions,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return _no_dropout(GPT2LMHeadModel(cfg))


class WeightModel(nn.Module):
    """CaMeLS token-weight model: causal transformer → Linear(d, 128) → GELU → Linear(128, 1) → Softplus(β=3).

    ``forward(input_ids (N, L), attention_mask (N, L)) -> weights (N, L)``, non-negative, exactly 0 at
    padding (multiplied by the mask). The last layer starts at zero, so all weights start at
    softplus_β(0) = log(2)/β ≈ 0.231 for β = 3.
    """

    def __init__(self, backbone: nn.Module, hidden: int = 128, beta: float = 3.0):
        super().__init__()
        self.backbone = backbone
        d = backbone.config.hidden_size
        self.head = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.head[2].weight)
        nn.init.zeros_(self.head[2].bias)
        self.beta = beta

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        raw = self.head(h).squeeze(-1)
        return nn.functional.softplus(raw, beta=self.beta) * attention_mask.to(raw.dtype)


WEIGHT_BACKBONES = ("fresh", "base", "base-frozen", "base-frozen-readout")


def build_weight_model(
    size_or_dir: str | os.PathLike,
    tokenizer,
    n_positions: int = 256,
    seed: int = 0,
    *,
    backbone: str = "fresh",
    base: nn.Module | None = None,
) -> WeightModel:
    """A :class:`WeightModel` on a GPT-2 backbone of a size, or a local pretrained directory.

    ``backbone``: ``"fresh"`` — the backbone as built (seeded random init, or the directory's weights);
    ``"base"`` — a copy of ``base``'s transformer (the QA-pre-trained base LM; CaMeLS likewise starts its
    weight model from a pre-trained LM), trained with the head; ``"base-frozen"`` — the same copy with
    ``requires_grad=False``, so only the head is meta-learned (:func:`fg2u_bench_lm.camels.meta_train`
    meta-learns the parameters that require grad); ``"base-frozen-readout"`` — the backbone and the head's
    first layer (seeded random) fixed, only the last ``Linear(128, 1)`` learned (129 meta-parameters: the
    small-N regime in which one forward-gradient direction carries a useful share of the meta-gradient,
    cosine ≈ √(b/N)). The head is always fresh (last layer zero).
    """
    from transformers import AutoModel, GPT2Model

    if backbone not in WEIGHT_BACKBONES:
        raise ValueError(f"backbone must be one of {WEIGHT_BACKBONES}, got {backbone!r}")
    if backbone != "fresh" and base is None:
        raise ValueError(f"backbone={backbone!r} copies the base model's transformer: pass base=<the base LM>")
    if backbone != "fresh":
        source = getattr(base, "transformer", base)
        copy = GPT2Model(source.config)
        copy.load_state_dict(source.state_dict())
        torch.manual_seed(seed + 1)
        model = _no_dropout(WeightModel(_no_dropout(copy)))
        if backbone in ("base-frozen", "base-frozen-readout"):
            for p in model.backbone.parameters():
                p.requires_grad_(False)
        if backbone == "base-frozen-readout":
            for p in model.head[0].parameters():
                p.requires_grad_(False)
        return model
    if Path(str(size_or_dir)).is_dir():
        backbone = AutoModel.from_pretrained(str(size_or_dir), local_files_only=True, attn_implementation="eager")
    else:
        torch.manual_seed(seed)
        backbone = GPT2Model(
            gpt2_config(
                str(size_or_dir),
                len(tokenizer),
                n_positions,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        )
    torch.manual_seed(seed + 1)
    return _no_dropout(WeightModel(_no_dropout(backbone)))


def param_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters as a dict of detached tensors (sharing storage with the module)."""
    return {k: v.detach() for k, v in model.named_parameters()}


def count_parameters(params: Mapping[str, torch.Tensor]) -> int:
    return int(sum(p.numel() for p in params.values()))


def token_nll(
    model: nn.Module, params: Mapping[str, torch.Tensor] | None, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Per-token NLL ``(N, L-1)``: entry j is −log p(x_{j+1} | x_{≤j}), 0 where x_{j+1} is padding.

    ``params=None`` uses the module's own parameters.
    """
    kwargs = {"attention_mask": attention_mask}
    out = model(input_ids, **kwargs) if params is None else functional_call(model, dict(params), (input_ids,), kwargs)
    logits = out.logits[:, :-1]
    nll = nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1), reduction="none"
    ).view(input_ids.shape[0], -1)
    return nll * attention_mask[:, 1:].to(nll.dtype)
