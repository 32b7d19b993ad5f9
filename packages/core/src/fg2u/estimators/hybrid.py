"""The hybrid estimator: exact reverse mode through the last K inner steps, forward gradients before them."""

from __future__ import annotations

import dataclasses

from fg2u.checks import check_positive_int
from fg2u.directions import DirectionDistribution, check_direction_settings
from fg2u.estimators.forward import RandomDirections
from fg2u.estimators.registry import register

__all__ = ["Hybrid"]


@register("hybrid")
@dataclasses.dataclass(frozen=True)
class Hybrid(RandomDirections):
    """Reverse mode through the last ``K = reverse_steps`` inner steps, (FG)²U tangents through the first T − K.

    Split the unroll at ``H = T − K``: ``θ_H = Ψ_head(φ)`` (``init`` and the first H steps) and
    ``G(θ, φ) = F(Ψ_tail(θ, φ), φ)`` (the last K steps and the outer loss), so ``L(φ) = G(Ψ_head(φ), φ)`` and

        ∇L(φ) = ∂_φG(θ_H, φ) + J_headᵀ ∇_θG(θ_H, φ),          J_head = dθ_H/dφ  (|θ| × N).

    The first term (every direct dependence of the last K steps and of F on φ) and ``∇_θG`` come from one
    reverse pass through the last K steps; only the second term is estimated, with b random directions
    ``E[v vᵀ] = I`` whose tangents ``J_head v_i`` are pushed through the first H steps in forward mode:

        ĝ = ∂_φG(θ_H, φ) + (1/b) Σ_{i<b} ⟨∇_θG(θ_H, φ), J_head v_i⟩ v_i,           E[ĝ] = ∇L(φ).

    The reverse part ``∂_φG(θ_H, φ)`` is exactly the [`TRGU`][fg2u.estimators.TRGU] estimate with ``truncation = K``:
    the hybrid is TRGU plus an unbiased FG²U estimate of TRGU's missing part ``h = J_headᵀ∇_θG = ∇L − TRGU_K``.

    Bias: none. Variance: Rademacher directions give ``E‖ĝ − ∇L‖² = (N − 1)/b · ‖h‖²`` against
    ``(N − 1)/b · ‖∇L‖²`` for FG2U with the same b, so the error shrinks by ``‖h‖²/‖∇L‖²`` — the square of
    TRGU(K)'s relative error, which [`fg2u.jax.gradient_quality`][fg2u.jax.gradient_quality] measures on your problem.
    It helps most when the last K steps carry most of the meta-gradient (a contracting inner map ``‖∂Φ/∂θ‖ ≤ ρ < 1``
    forgets early steps: ``‖h‖ = O(ρ^K)``); when TRGU(K)'s relative error is near 1 (early steps matter, e.g. a
    learning rate decayed towards the end of the unroll), the hybrid's error is FG2U's.

    Memory: the reverse pass stores the intermediates of K steps (∝ K, not T) plus FG2U's forward memory
    (∝ ``chunk_size``, flat in T). Cost: one primal pass of the first H steps, their jvps for the b
    directions (vectorised in chunks), and one forward + backward pass of the last K steps. ``K ≥ T`` is
    exactly RGU (including the dependence of ``init`` on φ): no direction is drawn and ``key`` may be ``None``.
    Leaves of θ that are not floating point (an optimiser's step counter) carry no tangent.

    Args:
      num_directions: b ≥ 1, directions for the head term.
      reverse_steps: K ≥ 1, the inner steps differentiated in reverse mode (memory ∝ K). Choose K about the
        number of steps over which the inner map forgets (``1/(1 − ρ)`` for a contraction ρ).
      distribution: ``"rademacher"``, ``"gaussian"``, ``"sphere"``, ``"orthogonal"`` or a
        [`fg2u.directions.DirectionDistribution`][fg2u.directions.DirectionDistribution].
      chunk_size: directions per vectorised chunk, or ``None`` (all b at once).
      check_finite: raise ``FloatingPointError`` naming the estimator on NaN/inf in the estimate or loss.

    With the same key, the directions are those FG2U draws (``sample_directions(distribution, key, b, φ)``).

    References (of its two parts):
      Shaban, A., Cheng, C.-A., Hatch, N., Boots, B. (2019). Truncated Back-propagation for Bilevel
      Optimization. AISTATS 2019. https://arxiv.org/abs/1810.10667
      Shen, Q., Wang, Y., Yang, Z., et al. (2024). Memory-Efficient Gradient Unrolling for Large-Scale Bi-level
      Optimization. NeurIPS 2024. https://arxiv.org/abs/2406.14095
    """

    num_directions: int = 1
    reverse_steps: int = 10
    distribution: str | DirectionDistribution = "rademacher"
    chunk_size: int | None = None
    check_finite: bool = False
    example = "num_directions=8, reverse_steps=10"

    @property
    def bias(self) -> str:
        return "unbiased"

    def __post_init__(self) -> None:
        check_direction_settings(self.num_directions, self.distribution, self.chunk_size)
        check_positive_int("reverse_steps (K, the inner steps differentiated in reverse mode)", self.reverse_steps)
