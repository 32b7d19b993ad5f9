"""Forward-mode estimators: FG²U (forward gradient through the unroll), FG²U-ZO (finite differences), FGU."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from fg2u._checks import check_choice, check_positive_float
from fg2u.directions import DirectionDistribution, check_direction_settings
from fg2u.estimator import Aux
from fg2u.problem import BlackBoxProblem
from fg2u.torch._chunks import weighted_direction_sum
from fg2u.torch._pytree import (
    PyTree,
    check_directions,
    check_finite_result,
    check_meta_params,
    detach,
    tree_map,
    tree_unflatten,
)
from fg2u.torch.directions import as_generator, sample_directions
from fg2u.torch.unroll import check_unrolled_problem, meta_objective

__all__ = ["FG2U", "FG2U_ZO", "FGU"]


def _check_key(key: Any, who: str) -> None:
    if key is None:
        raise TypeError(f"{who} is randomised: pass a torch.Generator or an int seed as key, not None")
    as_generator(key, f"{who}: key")


def _cast_directions(dir_leaves: list, phi_leaves: list) -> list:
    return [d.detach().to(dtype=p.dtype, device=p.device) for d, p in zip(dir_leaves, phi_leaves)]


def _finish(who: str, total: PyTree, b: int, phi: PyTree, loss: torch.Tensor, check: bool) -> tuple[PyTree, Aux]:
    grad = tree_map(lambda s, p: (s / b).to(p.dtype), total, phi)
    loss = loss.detach()
    if check:
        check_finite_result(who, grad, loss)
    return grad, Aux(outer_loss=loss)


def _forward_estimate(who: str, problem: Any, phi: PyTree, dir_leaves: list, spec: Any, b: int,
                      chunk_size: int | None) -> tuple[PyTree, torch.Tensor]:
    """``(Σ_i (∇L·v_i) v_i, L(φ))`` with one ``torch.func.jvp`` through the unroll per direction."""
    objective = meta_objective(problem)
    phi = detach(phi)

    def per_direction(v_leaves: list) -> tuple[torch.Tensor, torch.Tensor]:
        loss, derivative = torch.func.jvp(objective, (phi,), (tree_unflatten(v_leaves, spec),))
        return derivative, loss

    # forward-mode AD records no reverse graph; no_grad also stops autograd from recording the primal
    # loop when the problem closes over tensors that require grad (memory stays flat in T)
    with torch.no_grad():
        total, _, loss = weighted_direction_sum(per_direction, dir_leaves, spec, b, chunk_size, who)
    return total, loss


@dataclasses.dataclass(frozen=True)
class FG2U:
    """(FG)²U: ``ĝ = (1/b) Σ_{i<b} (∇L(φ)·v_i) v_i`` with ``E[v vᵀ] = I``, so ``E[ĝ] = ∇L(φ)``.

    Each directional derivative ``∇L·v_i`` is one forward-mode ``torch.func.jvp`` through the whole
    unrolled loop, which carries only ``(θ_t, dθ_t/dφ·v)``: memory does not grow with the unroll depth T.
    Directions are ``torch.func.vmap``-ped inside chunks of ``chunk_size`` (``randomness="same"``: random
    ops of the problem draw the same values for every direction of a chunk) and chunks run one after
    the other, so the working memory is ∝ ``chunk_size`` (plus the ``b × N`` directions); ``None`` → all b
    at once. If vmap cannot batch some operation of the problem, each chunk falls back to a loop over its
    directions (a ``RuntimeWarning`` says so once; the result is the same).

    For Rademacher directions ``E‖ĝ − ∇L‖² = (N − 1)/b · ‖∇L‖²`` (Lemma 3.1 bounds it by ``(N+1)/b``).

    Args:
      num_directions: b ≥ 1.
      distribution: ``"rademacher"``, ``"gaussian"``, ``"sphere"``, ``"orthogonal"`` or a
        :class:`fg2u.directions.DirectionDistribution`.
      chunk_size: directions per vmapped chunk, or ``None``.
      check_finite: raise ``FloatingPointError`` naming the estimator on NaN/inf.

    The step must be differentiable by ``torch.func`` transforms: compute inner gradients with
    ``torch.func.grad`` (as :func:`fg2u.torch.optim_transition` does), not ``torch.autograd.grad``.
    """

    num_directions: int = 1
    distribution: str | DirectionDistribution = "rademacher"
    chunk_size: int | None = None
    check_finite: bool = False

    def __post_init__(self) -> None:
        check_direction_settings(self.num_directions, self.distribution, self.chunk_size)

    def __call__(self, problem: Any, phi: PyTree, key: Any) -> tuple[PyTree, Aux]:
        """``(ĝ, Aux(L(φ)))`` for an :class:`fg2u.UnrolledProblem`; ``key``: ``torch.Generator`` or int seed."""
        check_unrolled_problem(problem, "FG2U")
        check_meta_params(phi, "FG2U")
        _check_key(key, "FG2U")
        directions = sample_directions(self.distribution, key, self.num_directions, phi)
        return self.with_directions(problem, phi, directions)

    def with_directions(self, problem: Any, phi: PyTree, directions: PyTree) -> tuple[PyTree, Aux]:
        """The estimate for explicit ``directions`` (pytree like φ, every leaf with a leading axis b)."""
        check_unrolled_problem(problem, "FG2U")
        phi_leaves, spec = check_meta_params(phi, "FG2U")
        dir_leaves, b = check_directions(directions, phi, "FG2U")
        dir_leaves = _cast_directions(dir_leaves, phi_leaves)
        total, loss = _forward_estimate("FG2U", problem, phi, dir_leaves, spec, b, self.chunk_size)
        return _finish("FG2U", total, b, phi, loss, self.check_finite)


@dataclasses.dataclass(frozen=True)
class FG2U_ZO:
    """Zeroth-order (FG)²U: the directional derivative replaced by a finite difference of L.

    * ``scheme="forward"``: ``ĝ = (1/b) Σ_i (L(φ+εv_i) − L(φ))/ε · v_i``, bias ``O(ε)`` (b + 1 evaluations).
    * ``scheme="central"``: ``ĝ = (1/b) Σ_i (L(φ+εv_i) − L(φ−εv_i))/(2ε) · v_i``, bias ``O(ε²)`` (2b evaluations).

    Runs under ``torch.no_grad``. Works on a :class:`fg2u.BlackBoxProblem` (``objective(φ, data)`` may
    be any Python code returning a scalar — evaluated once per perturbation, never vmapped) or on an
    :class:`fg2u.UnrolledProblem` (perturbations vmapped inside chunks, with the loop fallback of
    :class:`FG2U`). ``Aux.outer_loss`` is ``L(φ)`` for the forward scheme and the mean of the ``2b``
    perturbed values for the central one. Use float64 φ for small ``eps``: the rounding error of the
    difference is ``O(u·|L|/ε)`` with ``u`` the unit roundoff.
    """

    num_directions: int = 1
    eps: float = 1e-4
    scheme: str = "forward"
    distribution: str | DirectionDistribution = "rademacher"
    chunk_size: int | None = None
    check_finite: bool = False

    def __post_init__(self) -> None:
        check_direction_settings(self.num_directions, self.distribution, self.chunk_size)
        check_positive_float("eps (the finite-difference step)", self.eps)
        check_choice("scheme", self.scheme, ("forward", "central"))

    def __call__(self, problem: Any, phi: PyTree, key: Any) -> tuple[PyTree, Aux]:
        """``(ĝ, Aux)`` for a black-box or unrolled problem; ``key``: ``torch.Generator`` or int seed."""
        self._check_problem(problem)
        check_meta_params(phi, "FG2U_ZO")
        _check_key(key, "FG2U_ZO")
        directions = sample_directions(self.distribution, key, self.num_directions, phi)
        return self.with_directions(problem, phi, directions)

    def with_directions(self, problem: Any, phi: PyTree, directions: PyTree) -> tuple[PyTree, Aux]:
        """The estimate for explicit ``directions`` (pytree like φ, every leaf with a leading axis b)."""
        self._check_problem(problem)
        phi_leaves, spec = check_meta_params(phi, "FG2U_ZO")
        dir_leaves, b = check_directions(directions, phi, "FG2U_ZO")
        dir_leaves = _cast_directions(dir_leaves, phi_leaves)
        phi_leaves = [p.detach() for p in phi_leaves]
        objective = meta_objective(problem)
        vectorize = not isinstance(problem, BlackBoxProblem)
        eps = self.eps

        def shifted(v_leaves: list, scale: float) -> PyTree:
            return tree_unflatten([p + (scale * eps) * d for p, d in zip(phi_leaves, v_leaves)], spec)

        with torch.no_grad():
            if self.scheme == "forward":
                base = objective(tree_unflatten(phi_leaves, spec))

                def per_direction(v_leaves: list) -> tuple[torch.Tensor, torch.Tensor]:
                    plus = objective(shifted(v_leaves, 1.0))
                    return (plus - base) / eps, plus

                total, _, _ = weighted_direction_sum(per_direction, dir_leaves, spec, b, self.chunk_size,
                                                     "FG2U_ZO", vectorize)
                loss = base
            else:

                def per_direction(v_leaves: list) -> tuple[torch.Tensor, torch.Tensor]:
                    plus, minus = objective(shifted(v_leaves, 1.0)), objective(shifted(v_leaves, -1.0))
                    return (plus - minus) / (2 * eps), 0.5 * (plus + minus)

                total, value_sum, _ = weighted_direction_sum(per_direction, dir_leaves, spec, b,
                                                             self.chunk_size, "FG2U_ZO", vectorize)
                loss = value_sum / b
        return _finish("FG2U_ZO", total, b, phi, loss, self.check_finite)

    @staticmethod
    def _check_problem(problem: Any) -> None:
        if not isinstance(problem, BlackBoxProblem):
            check_unrolled_problem(problem, "FG2U_ZO")


@dataclasses.dataclass(frozen=True)
class FGU:
    """Exact ``∇L(φ)`` by forward mode: N jvps through the unroll along the standard basis of φ (the
    full forward Jacobian, as ``torch.func.jacfwd``), vmapped.

    Memory is flat in T like FG²U but the cost is N unrolls (and the vmap holds N tangents at once):
    a reference for small N.
    """

    check_finite: bool = False

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        check_unrolled_problem(problem, "FGU")
        phi_leaves, spec = check_meta_params(phi, "FGU")
        # the standard basis e_1..e_N, cut into the leaves of φ: Σ_i (∇L·e_i) e_i = ∇L
        sizes = [p.numel() for p in phi_leaves]
        n = sum(sizes)
        basis, offset = [], 0
        for p, size in zip(phi_leaves, sizes):
            e = torch.zeros((n, size), dtype=p.dtype, device=p.device)
            e[offset : offset + size] = torch.eye(size, dtype=p.dtype, device=p.device)
            basis.append(e.reshape((n,) + tuple(p.shape)))
            offset += size
        total, loss = _forward_estimate("FGU", problem, phi, basis, spec, n, None)
        return _finish("FGU", total, 1, phi, loss, self.check_finite)
