"""Reverse-mode estimators: RGU (full backprop), TRGU (truncated), RGUCheckpointed (√T rematerialisation),
RGURecursive (recursive checkpointing, O(log T) memory)."""

from __future__ import annotations

import dataclasses

from fg2u.checks import check_positive_int
from fg2u.estimators.base import Estimator
from fg2u.estimators.registry import register

__all__ = ["RGU", "TRGU", "RGUCheckpointed", "RGURecursive", "recursive_radices"]


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

    @property
    def bias(self) -> str:
        return "exact"


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

    @property
    def bias(self) -> str:
        return "exact"

    def __post_init__(self) -> None:
        if self.segment_length is not None:
            check_positive_int("segment_length", self.segment_length)


@register("rgu_recursive")
@dataclasses.dataclass(frozen=True)
class RGURecursive(Estimator):
    """Exact ``∇L(φ)`` by reverse mode with recursive (k-ary) checkpointing: memory O(k·log_k T) states.

    The unroll is cut into at most ``k = branching`` chunks, each chunk into k sub-chunks, and so on for
    ``L = ⌈log_k T⌉`` levels (`recursive_radices`: every level splits in k except the top one, which takes
    ``⌈T / k^{L−1}⌉ ≤ k`` chunks, so the tree covers T with fewer than ``k^{L−1}`` spare slots, which are skipped).
    The forward pass stores the inputs of the top level's chunks only; the backward pass recomputes one chunk
    at a time, storing the inputs of its sub-chunks, recursively, and backpropagates through the k steps of a
    bottom chunk from their stored intermediates.

    * Memory: at most ``k`` stored states per level, ``≤ k·L = k·⌈log_k T⌉`` states in all, plus one bottom
      chunk's k steps of intermediates — O(k·log_k T), against O(T) for [`RGU`][fg2u.estimators.RGU] and O(√T) for
      [`RGUCheckpointed`][fg2u.estimators.RGUCheckpointed].
    * Recomputation: each level below the top re-runs the forward once, ``L − 1`` extra forward unrolls:
      O(T·log_k T) step evaluations in all.
    * Bias: none (exact, including the dependence of ``init`` on φ).

    ``branching = 2`` is recursive bisection (Griewank 1992); stored states ``k·log_k T = (k/ln k)·ln T`` are
    fewest near k = 3–4 while the recomputation ``log_k T`` keeps falling as k grows, hence the default 4 (the
    same memory as bisection for half its recomputation). ``branching ≥ T`` is one level: plain reverse mode.
    Unlike revolve's binomial schedule (Griewank & Walther 2000), which is optimal for a fixed number of
    checkpoints, this schedule is the same at every level, so that it can be written as L nested loops (a
    compiled program of size O(log T)).

    Args:
      branching: k ≥ 2, the number of chunks each level is cut into.
      check_finite: raise ``FloatingPointError`` naming the estimator on NaN/inf in the estimate or loss.

    Backend notes: JAX nests L ``lax.scan`` of ≤ k iterations, the body of each but the bottom one a
    ``jax.checkpoint``-ed scan of the level below (spare slots are a ``lax.cond`` identity); PyTorch nests the
    autograd function of [`RGUCheckpointed`][fg2u.estimators.RGUCheckpointed] (each chunk recomputed in backward, random
    ops replayed with the saved RNG state).

    References:
      Griewank, A. (1992). Achieving logarithmic growth of temporal and spatial complexity in reverse automatic
      differentiation. Optimization Methods and Software 1(1), 35–54. https://doi.org/10.1080/10556789208805505
      Griewank, A., Walther, A. (2000). Algorithm 799: revolve: an implementation of checkpointing for the reverse
      or adjoint mode of computational differentiation. ACM TOMS 26(1), 19–45. https://doi.org/10.1145/347837.347846
      Diffrax's ``RecursiveCheckpointAdjoint`` (online treeverse, O(log T) checkpoints):
      https://docs.kidger.site/diffrax/api/adjoints/
    """

    branching: int = 4
    check_finite: bool = False

    @property
    def bias(self) -> str:
        return "exact"

    example = "branching=4"

    def __post_init__(self) -> None:
        check_positive_int("branching (k, the chunks per level)", self.branching)
        if self.branching < 2:
            raise ValueError(f"branching (k, the chunks per level) must be >= 2, got {self.branching}")


def recursive_radices(num_steps: int, branching: int) -> tuple[int, ...]:
    """The chunks per level of [`RGURecursive`][fg2u.estimators.RGURecursive]'s tree, top level first: ``L = ⌈log_k T⌉``
    levels (at least one), k chunks each except the top one, ``⌈T / k^{L−1}⌉``; their product is ≥ T and < T + k^{L−1}.

    >>> recursive_radices(100, 4), recursive_radices(64, 4), recursive_radices(3, 4), recursive_radices(1, 2)
    ((2, 4, 4, 4), (4, 4, 4), (3,), (1,))
    """
    check_positive_int("num_steps", num_steps)
    levels = 1
    while branching**levels < num_steps:
        levels += 1
    return (-(-num_steps // branching ** (levels - 1)),) + (branching,) * (levels - 1)
