"""The core's combinators ([`fg2u.estimators.combinators`][fg2u.estimators.combinators]) bound to PyTorch arithmetic
(`fg2u.torch._ops`; counters are Python ints)."""

from __future__ import annotations

from typing import final

from fg2u.estimators import combinators
from fg2u.torch._ops import TREE_OPS

__all__ = ["TwoPhase", "Scaled", "ControlVariate", "RunningControlVariate"]


@final
class TwoPhase(combinators.TwoPhase):
    """[`fg2u.estimators.TwoPhase`][fg2u.estimators.TwoPhase] on PyTorch (the step counter a Python int).

    Examples:
      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> phi = torch.tensor([1.0, -2.0])
      >>> est = ft.TwoPhase(first=ft.HessianFree(), second=ft.RGU(), switch_step=1)
      >>> state = est.init(phi)
      >>> for _ in range(2):
      ...     grad, aux, state = est.estimate(problem, phi, None, state)
      ...     print(grad.round(decimals=3), state.meta_step)
      tensor([ 0.9990, -1.9980]) 1
      tensor([ 1.9960, -3.9920]) 2
    """

    ops = TREE_OPS


@final
class Scaled(combinators.Scaled):
    """[`fg2u.estimators.Scaled`][fg2u.estimators.Scaled] on PyTorch.

    Examples:
      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> est = ft.Scaled(ft.RGU(), scale=0.5)
      >>> est(problem, torch.tensor([1.0, -2.0]), None)[0].round(decimals=3)  # half of RGU's 2(1 − 2⁻¹⁰)² φ
      tensor([ 0.9980, -1.9960])
      >>> est.settings()
      {'estimator': 'RGU', 'check_finite': False, 'scale': 0.5}
    """

    ops = TREE_OPS


@final
class ControlVariate(combinators.ControlVariate):
    """[`fg2u.estimators.ControlVariate`][fg2u.estimators.ControlVariate] on PyTorch.

    Examples:
      With the exact gradient as surrogate (scale 1) the residual, hence the variance, is zero:

      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> est = ft.ControlVariate(ft.FG2U(num_directions=1), surrogate=ft.RGU(), scale=1.0)
      >>> est(problem, torch.tensor([1.0, -2.0]), 0)[0].round(decimals=3)
      tensor([ 1.9960, -3.9920])
    """

    ops = TREE_OPS


@final
class RunningControlVariate(combinators.RunningControlVariate):
    """[`fg2u.estimators.RunningControlVariate`][fg2u.estimators.RunningControlVariate] on PyTorch.

    Examples:
      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> phi = torch.tensor([1.0, -2.0])
      >>> est = ft.RunningControlVariate(ft.FG2U(num_directions=2, distribution="orthogonal"), decay=0.5)
      >>> grad, aux, state = est.estimate(problem, phi, 0, est.init(phi))
      >>> grad.round(decimals=3)  # b = N orthogonal directions: exact, whatever the control variate
      tensor([ 1.9960, -3.9920])
      >>> state.mean.round(decimals=3), state.count  # m₁ = β·0 + (1 − β)ĝ
      (tensor([ 0.9980, -1.9960]), 1)
    """

    ops = TREE_OPS
