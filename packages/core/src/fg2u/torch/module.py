"""A ``torch.nn.Module`` as the inner model: its parameters as a dict of tensors (the inner state), its
buffers kept, and calls through ``torch.func.functional_call`` so that estimators can differentiate the
unrolled training of the module as a pure function of (parameters, φ)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["module_params", "module_buffers", "functional_model"]


def module_params(module: nn.Module, *, trainable_only: bool = True) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` from ``module.named_parameters()``: detached copies (the module is not modified).

    With ``trainable_only`` (default) parameters with ``requires_grad=False`` are left out; they stay in
    the module and are used as constants by [`functional_model`][fg2u.torch.module.functional_model].
    """
    return {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad or not trainable_only}


def module_buffers(module: nn.Module) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` from ``module.named_buffers()`` (detached copies): e.g. BatchNorm running stats."""
    return {name: b.detach().clone() for name, b in module.named_buffers()}


def _stateful_norms(module: nn.Module) -> list[str]:
    out = []
    for name, sub in module.named_modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm) and sub.training and sub.track_running_stats:
            out.append(name or type(sub).__name__)
    return out


def functional_model(module: nn.Module) -> Callable[..., Any]:
    """``apply(params, *args, **kwargs) = module(*args, **kwargs)`` with the parameters replaced by the
    dict ``params`` (as returned by [`module_params`][fg2u.torch.module.module_params], or any dict with those keys).

    Buffers and parameters not in ``params`` are taken from the module, as constants (detached copies
    taken now). Raises ``ValueError`` for a BatchNorm layer in training mode with running statistics:
    it would update its buffers in place, a side effect the functional estimators cannot differentiate
    or replay — call ``module.eval()`` first (or use ``track_running_stats=False``).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"functional_model expects a torch.nn.Module, got {type(module).__name__}")
    bad = _stateful_norms(module)
    if bad:
        raise ValueError(
            f"functional_model: BatchNorm layer(s) {bad} are in training mode with running statistics, which "
            "they would update in place inside the unrolled loop; call module.eval() first (running "
            "statistics used as constant buffers) or build them with track_running_stats=False"
        )
    frozen = {name: p.detach() for name, p in module.named_parameters()}
    frozen.update(module_buffers(module))

    def apply(params: dict[str, torch.Tensor], *args: Any, **kwargs: Any) -> Any:
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict name -> tensor (see module_params), got {type(params).__name__}")
        unknown = set(params) - set(frozen)
        if unknown:
            raise KeyError(f"params has names that are not parameters of the module: {sorted(unknown)}")
        return torch.func.functional_call(module, {**frozen, **params}, args, kwargs)

    return apply
