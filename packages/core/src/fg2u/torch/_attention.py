"""Fused attention kernels without forward-mode derivatives: recognise their errors and name the fix.

FG²U pushes tangents through the inner loop (``torch.func.jvp``, or the double-vjp kernel of
`fg2u.torch._tangent`, which differentiates each step's backward once more). PyTorch's fused
``scaled_dot_product_attention`` kernels — flash and memory-efficient on CUDA, flash on CPU (what SDPA picks
on CPU in torch 2.13, and the default attention of transformers models, ``attn_implementation="sdpa"``) —
have neither a forward-mode formula nor a differentiable backward, and neither has the ``flash_attn``
package's ``FlashAttnFunc``. The user then sees, deep inside the unroll, PyTorch's own error::

    NotImplementedError: Trying to use forward AD with _scaled_dot_product_efficient_attention that does
    not support it because it has not been implemented yet. ...
    RuntimeError: derivative for aten::_scaled_dot_product_flash_attention_for_cpu_backward is not implemented

(pytorch/pytorch#98164, #117629, #128971; Dao-AILab/flash-attention#1672.) Reverse unrolling through an inner
gradient step (RGU over ``optim_transition``) differentiates the backward too and fails the same way.
The ``flash_attn`` package is worse: its backward is not differentiable, so a second derivative through it
silently drops every path through the attention (a wrong meta-gradient, no error at all).

Two guards name the kernel and the fix — the plain attention (``attn_implementation="eager"`` in
transformers) or PyTorch's math SDPA backend (``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)``), both of
which every mode of AD goes through: `check_twice_differentiable` looks for the kernels' autograd nodes in
the graph of an ``optim_transition`` inner loss before its gradient is differentiated again (once per inner
loss), and `fused_attention_error` recognises PyTorch's errors where a step differentiates otherwise.
"""

from __future__ import annotations

import re
import weakref
from typing import Any

__all__ = ["fused_attention_error", "fused_attention_in_graph", "fused_attention_message", "check_twice_differentiable"]

# aten ops of the fused SDPA kernels (CUDA flash / memory-efficient / cuDNN, CPU flash) and their backwards
_SDPA_KERNEL = re.compile(
    r"\b(?:aten::)?(_scaled_dot_product_(?:flash_attention|efficient_attention|cudnn_attention|fused_attention)\w*"
    r"|_(?:flash|efficient)_attention_(?:forward|backward)\w*)"
)
_NO_DERIVATIVE = (
    "Trying to use forward AD with",  # no forward-mode formula (torch.func.jvp, forward_ad)
    "derivative for aten::",  # no derivative of the backward (double backward, fg2u's double-vjp kernel)
    "is not implemented",
    "does not support it",
)


def _flash_attn_frame(err: BaseException) -> bool:
    """Whether the error passed through the ``flash_attn`` package (its autograd Functions have no jvp)."""
    tb = err.__traceback__
    while tb is not None:
        if "flash_attn" in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
            return True
        tb = tb.tb_next
    return False


def fused_attention_message(who: str, kernel: str) -> str:
    """The error text: what cannot be differentiated twice, and the two fixes."""
    return (
        f"{who}: the model runs {kernel}, which PyTorch cannot differentiate a second time (no forward-mode "
        "formula and no derivative of its backward: pytorch/pytorch#98164, #128971, flash-attention#1672); "
        "FG²U's tangents, and reverse unrolling through an inner gradient step, need one. Use the plain "
        'attention: attn_implementation="eager" for a transformers model (e.g. '
        'AutoModelForCausalLM.from_config(config, attn_implementation="eager")), or run the estimator inside '
        "`with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):` (PyTorch's math SDPA "
        "backend, which both modes go through)"
    )


def fused_attention_error(who: str, *errors: BaseException) -> NotImplementedError | None:
    """An error naming the fused attention kernel behind any of ``errors`` and the fix, or None.

    ``errors`` are the exceptions a forward-mode estimate raised (the double-vjp kernel's, then
    ``torch.func.jvp``'s); the first one that comes from a fused attention kernel is explained.
    """
    for err in errors:
        text = str(err)
        match = _SDPA_KERNEL.search(text)
        if match and any(marker in text for marker in _NO_DERIVATIVE):
            name = match.group(1).removesuffix("_backward")
            kernel = f"PyTorch's fused scaled_dot_product_attention kernel {name}"
        elif _flash_attn_frame(err):
            kernel = "the flash_attn package's attention (FlashAttnFunc)"
        else:
            continue
        return NotImplementedError(fused_attention_message(who, kernel))
    return None


# autograd nodes of the same kernels: ScaledDotProductFlashAttentionForCpuBackward0, …EfficientAttention…,
# …CudnnAttention…, and the flash_attn package's Functions (FlashAttnFuncBackward, FlashAttnVarlenFuncBackward …)
_FUSED_NODE = re.compile(r"ScaledDotProduct\w*(?:Flash|Efficient|Cudnn|Fused)\w*Attention|FlashAttn")


def fused_attention_in_graph(output: Any, limit: int = 200_000) -> str | None:
    """A description of the first fused attention kernel in ``output``'s autograd graph, or None.

    Needed where no error would come: the ``flash_attn`` package's backward is not differentiable, so a
    second derivative through it silently loses every path through the attention (a wrong meta-gradient,
    not an error). Walks at most ``limit`` nodes.
    """
    seen: set[int] = set()
    stack = [getattr(output, "grad_fn", None)]
    while stack and len(seen) < limit:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        name = node.name()
        if _FUSED_NODE.search(name):
            if "FlashAttn" in name:
                return f"the flash_attn package's attention ({name.removesuffix('Backward')})"
            aten = re.sub(r"(?<!^)(?=[A-Z])", "_", re.sub(r"Backward\d*$", "", name)).lower()
            return f"PyTorch's fused scaled_dot_product_attention kernel _{aten}"
        stack.extend(next_node for next_node, _ in node.next_functions)
    return None


_CHECKED: weakref.WeakSet = weakref.WeakSet()  # inner losses whose graph was found free of fused attention


def check_twice_differentiable(loss_fn: Any, loss: Any, who: str) -> None:
    """Raises ``NotImplementedError`` (`fused_attention_message`) when the graph of ``loss`` — an inner
    loss whose gradient is about to be differentiated again — runs a fused attention kernel. Checked once
    per ``loss_fn`` (the graph of one call; a model does not switch kernels between steps)."""
    if loss_fn in _CHECKED or not getattr(loss, "requires_grad", False):
        return
    kernel = fused_attention_in_graph(loss)
    if kernel is not None:
        raise NotImplementedError(fused_attention_message(who, kernel))
    _CHECKED.add(loss_fn)
