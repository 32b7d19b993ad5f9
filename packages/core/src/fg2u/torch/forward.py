"""Forward-mode estimators: FG²U (forward gradient through the unroll), FG²U-ZO (finite differences), FGU."""

from __future__ import annotations

from typing import Any, final

import torch

from fg2u import estimators
from fg2u.estimator import Aux
from fg2u.problem import BlackBoxProblem
from fg2u.torch._chunks import weighted_direction_sum
from fg2u.torch._pytree import (
    PyTree,
    check_directions,
    check_finite_result,
    check_meta_params,
    tree_map,
    tree_unflatten,
)
from fg2u.torch._tangent import forward_estimate
from fg2u.torch.directions import as_generator, sample_directions
from fg2u.torch.unroll import check_unrolled_problem, meta_objective

__all__ = ["FG2U", "FG2U_ZO", "FGU"]


def _check_key(key: Any, who: str) -> None:
    if key is None:
        raise TypeError(f"{who} is randomised: pass a torch.Generator or an int seed as key, not None")
    as_generator(key, f"{who}: key")


def _cast_directions(dir_leaves: list, phi_leaves: list) -> list:
    return [d.detach().to(dtype=p.dtype, device=p.device) for d, p in zip(dir_leaves, phi_leaves)]


def _finish(
    who: str, total: PyTree, b: int, phi: PyTree, loss: torch.Tensor, check: bool, problem: Any = None
) -> tuple[PyTree, Aux]:
    grad = tree_map(lambda s, p: (s / b).to(p.dtype), total, phi)
    loss = loss.detach()
    if check:
        check_finite_result(who, grad, loss, phi=phi, problem=problem)
    return grad, Aux(outer_loss=loss)


def _forward_estimate(
    who: str, problem: Any, phi: PyTree, dir_leaves: list, spec: Any, b: int, chunk_size: int | None
) -> tuple[PyTree, torch.Tensor]:
    """``(Σ_i (∇L·v_i) v_i, L(φ))``: the tangents of each chunk pushed through the unroll together by the
    double-vjp kernel (`fg2u.torch._tangent`), with a ``torch.func.jvp`` fallback."""
    return forward_estimate(who, problem, phi, dir_leaves, spec, b, chunk_size)


@final
class FG2U(estimators.FG2U):
    """PyTorch kernel of [`fg2u.estimators.FG2U`][fg2u.estimators.FG2U] (same settings and defaults).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> phi = torch.tensor([1.0, -2.0])
      >>> est = ft.FG2U(num_directions=2, distribution="orthogonal")  # b = N orthogonal directions: exact
      >>> grad, aux = est(problem, phi, torch.Generator().manual_seed(0))
      >>> grad.round(decimals=3)
      tensor([ 1.9960, -3.9920])
      >>> ft.FG2U(num_directions=8, chunk_size=4)(problem, phi, 0)[0].shape  # unbiased: E[ĝ] = ∇L
      torch.Size([2])
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any) -> tuple[PyTree, Aux]:
        """``(ĝ, Aux(L(φ)))`` for an [`fg2u.UnrolledProblem`][fg2u.problem.UnrolledProblem]; ``key``:
        ``torch.Generator`` or int seed."""
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
        return _finish("FG2U", total, b, phi, loss, self.check_finite, problem)


@final
class FG2U_ZO(estimators.FG2U_ZO):
    """PyTorch kernel of [`fg2u.estimators.FG2U_ZO`][fg2u.estimators.FG2U_ZO] (same settings and defaults).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> phi = torch.tensor([1.0, -2.0])
      >>> est = ft.FG2U_ZO(num_directions=2, eps=1e-2, scheme="central", distribution="orthogonal")
      >>> est(problem, phi, 0)[0].round(decimals=2)  # L is quadratic: central differences are exact
      tensor([ 2.0000, -3.9900])
    """

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

                total, _, _ = weighted_direction_sum(
                    per_direction, dir_leaves, spec, b, self.chunk_size, "FG2U_ZO", vectorize
                )
                loss = base
            else:

                def per_direction(v_leaves: list) -> tuple[torch.Tensor, torch.Tensor]:
                    plus, minus = objective(shifted(v_leaves, 1.0)), objective(shifted(v_leaves, -1.0))
                    return (plus - minus) / (2 * eps), 0.5 * (plus + minus)

                total, value_sum, _ = weighted_direction_sum(
                    per_direction, dir_leaves, spec, b, self.chunk_size, "FG2U_ZO", vectorize
                )
                loss = value_sum / b
        return _finish("FG2U_ZO", total, b, phi, loss, self.check_finite, problem)

    @staticmethod
    def _check_problem(problem: Any) -> None:
        if not isinstance(problem, BlackBoxProblem):
            check_unrolled_problem(problem, "FG2U_ZO")


@final
class FGU(estimators.FGU):
    """PyTorch kernel of [`fg2u.estimators.FGU`][fg2u.estimators.FGU] (same settings and defaults).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> phi = torch.tensor([1.0, -2.0])
      >>> ft.FGU()(problem, phi, None)[0].round(decimals=3)  # N = 2 tangents
      tensor([ 1.9960, -3.9920])
    """

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
        return _finish("FGU", total, 1, phi, loss, self.check_finite, problem)
