"""Reverse-mode estimators: RGU (full backprop), TRGU (truncated), RGUCheckpointed (√T rematerialisation)."""

from __future__ import annotations

import dataclasses

from fg2u._checks import check_positive_int
from fg2u.estimators.base import Estimator
from fg2u.estimators.registry import register

__all__ = ["RGU", "TRGU", "RGUCheckpointed"]


@register("rgu")
@dataclasses.dataclass(frozen=True)
class RGU(Estimator):
    """Exact ``∇L(φ)`` by reverse mode through the whole unroll.

    Stores the intermediates of all T inner steps: memory ∝ T. Bias: none (exact). The reference of the
    other estimators.

    References:
      Maclaurin, D., Duvenaud, D., Adams, R. (2015). Gradient-based Hyperparameter Optimization through
      Reversible Learning. ICML 2015. https://arxiv.org/abs/1502.03492
      Franceschi, L., Donini, M., Frasconi, P., Pontil, M. (2017). Forward and Reverse Gradient-Based
      Hyperparameter Optimization. ICML 2017. https://arxiv.org/abs/1703.01785
    """

    check_finite: bool = False


@register("trgu")
@dataclasses.dataclass(frozen=True)
class TRGU(Estimator):
    """Truncated reverse mode: backprop through the last ``K = truncation`` inner steps only.

    ``θ_{T−K}`` is computed normally and then treated as a constant; the direct dependence of the last K steps
    and of F on φ is kept, so ``dθ_T/dφ ≈ Σ_{t ≥ T−K} (Π_{s>t} ∂Φ_s/∂θ) ∂Φ_t/∂φ``. ``K ≥ T`` is exactly RGU
    (including the dependence of ``init`` on φ). Memory ∝ K. Bias: the dropped early-step terms.

    References:
      Shaban, A., Cheng, C.-A., Hatch, N., Boots, B. (2019). Truncated Back-propagation for Bilevel
      Optimization. AISTATS 2019. https://arxiv.org/abs/1810.10667
    """

    truncation: int
    check_finite: bool = False
    example = "truncation=10"

    def __post_init__(self) -> None:
        check_positive_int("truncation (K, the number of differentiated steps)", self.truncation)


@register("rgu_checkpointed")
@dataclasses.dataclass(frozen=True)
class RGUCheckpointed(Estimator):
    """Exact ``∇L(φ)`` by reverse mode with rematerialisation.

    The unroll is split into segments of ``S = segment_length`` steps (default ``⌈√T⌉``; a last segment holds
    the remaining ``T mod S`` steps). Only segment boundaries are stored in the forward pass; the backward
    pass recomputes one segment at a time. Memory ∝ ``T/S + S`` (∝ √T by default) for about one extra forward
    unroll. Bias: none (exact).

    Backend notes: JAX uses ``jax.checkpoint`` on a nested scan; PyTorch a small autograd function that
    recomputes each segment in backward (``torch.utils.checkpoint`` refuses steps that call
    ``torch.func.grad``), replaying random ops with the saved RNG state.

    References:
      Chen, T., Xu, B., Zhang, C., Guestrin, C. (2016). Training Deep Nets with Sublinear Memory Cost.
      https://arxiv.org/abs/1604.06174
    """

    segment_length: int | None = None
    check_finite: bool = False

    def __post_init__(self) -> None:
        if self.segment_length is not None:
            check_positive_int("segment_length", self.segment_length)
