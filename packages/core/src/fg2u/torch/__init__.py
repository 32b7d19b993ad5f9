"""``fg2u.torch`` — the PyTorch backend, built on ``torch.func``: the same estimators, arguments, defaults
and result types as [`fg2u.jax`][fg2u.jax], over pytrees (dicts, lists, tuples) of tensors.

Example (an ``nn.Module`` as the inner model, φ = per-example log-weights of the inner loss; runs as is)::

    import torch
    from fg2u import UnrolledProblem
    from fg2u.torch import FG2U, RGU, optim, optim_transition, functional_model, module_params

    torch.manual_seed(0)
    x, y = torch.randn(32, 5), torch.randn(32)
    xs, ys, idx = x.expand(50, 32, 5), y.expand(50, 32), torch.arange(32).expand(50, 32)
    net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    f = functional_model(net)
    def inner_loss(params, phi, batch):
        xb, yb, ib = batch
        return torch.mean(torch.sigmoid(phi[ib]) * (f(params, xb).squeeze(-1) - yb) ** 2)
    init, step = optim_transition(inner_loss, optim.adam(1e-2), module_params(net))
    problem = UnrolledProblem(init, step, lambda s, phi, b: torch.mean((f(s.params, b[0]).squeeze(-1) - b[1]) ** 2),
                              num_steps=50, inner_batches=(xs, ys, idx), outer_batch=(x[:8], y[:8]))
    phi = torch.zeros(32)
    grad, aux = FG2U(num_directions=8, chunk_size=4)(problem, phi, torch.Generator().manual_seed(0))
    exact, _ = RGU()(problem, phi, None)   # memory ∝ T; FG2U's memory does not grow with T

Estimators (frozen dataclasses, ``est(problem, phi, key) -> (grad like phi, fg2u.Aux(outer_loss))``;
``key`` a ``torch.Generator`` — advanced by sampling — or an int seed; ``None`` for deterministic ones):
[`FG2U`][fg2u.torch.FG2U], [`FG2U_ZO`][fg2u.torch.FG2U_ZO], [`FGU`][fg2u.torch.FGU], [`RGU`][fg2u.torch.RGU],
[`TRGU`][fg2u.torch.TRGU], [`RGUCheckpointed`][fg2u.torch.RGUCheckpointed], [`RGURecursive`][fg2u.torch.RGURecursive],
[`Implicit`][fg2u.torch.Implicit] (with the solves [`neumann`][fg2u.torch.neumann],
[`conjugate_gradient`][fg2u.torch.conjugate_gradient], [`identity`][fg2u.torch.identity], and the aliases ``Neumann``,
``ConjugateGradient``, ``HessianFree``), [`Hybrid`][fg2u.torch.Hybrid], and the combinators
[`TwoPhase`][fg2u.torch.TwoPhase], [`Scaled`][fg2u.torch.Scaled], [`ControlVariate`][fg2u.torch.ControlVariate],
[`RunningControlVariate`][fg2u.torch.RunningControlVariate] — each the PyTorch kernel (final) of the
settings class of the same name in [`fg2u.estimators`][fg2u.estimators]; [`make`][fg2u.torch.make] builds them by name.
Helpers: [`unroll`][fg2u.torch.unroll.unroll], [`meta_objective`][fg2u.torch.meta_objective],
[`sample_directions`][fg2u.torch.sample_directions], [`optim_transition`][fg2u.torch.optim_transition],
[`InnerState`][fg2u.torch.InnerState], [`TorchOps`][fg2u.torch.TorchOps], [`fg2u.torch.optim`][fg2u.torch.optim]
(``sgd``, ``momentum``, ``adam``), [`module_params`][fg2u.torch.module_params],
[`module_buffers`][fg2u.torch.module_buffers], [`functional_model`][fg2u.torch.functional_model]; direction-parallel
FG²U over ``torch.distributed``: [`DirectionParallel`][fg2u.torch.DirectionParallel],
[`rank_seed`][fg2u.torch.rank_seed] (see `fg2u.torch.parallel`).

Steps must be pure functions of (state, φ, batch), differentiable by autograd and by ``torch.func``, without
in-place updates of captured tensors. [`optim_transition`][fg2u.torch.optim_transition] takes the inner gradient with
``torch.autograd.grad(create_graph=True)`` outside ``torch.func`` transforms (reverse mode builds one graph, as
TorchOpt does) and with ``torch.func.grad`` inside them; its steps also carry a tangent rule that FG²U uses to push
directions through one Hessian-vector product per step.
"""

from __future__ import annotations

from typing import Any

from fg2u.estimators import Backend, conjugate_gradient, identity, neumann
from fg2u.torch import optim
from fg2u.torch._pytree import check_finite_inputs
from fg2u.torch.combinators import ControlVariate, RunningControlVariate, Scaled, TwoPhase
from fg2u.torch.directions import TorchOps, sample_directions
from fg2u.torch.forward import FG2U, FG2U_ZO, FGU
from fg2u.torch.hybrid import Hybrid
from fg2u.torch.implicit import ConjugateGradient, HessianFree, Implicit, Neumann
from fg2u.torch.module import functional_model, module_buffers, module_params
from fg2u.torch.optim import InnerState, optim_transition
from fg2u.torch.parallel import DirectionParallel, rank_seed
from fg2u.torch.quality import gradient_quality
from fg2u.torch.reverse import RGU, TRGU, RGUCheckpointed, RGURecursive
from fg2u.torch.unroll import meta_objective, unroll

__all__ = [
    "FG2U",
    "FG2U_ZO",
    "FGU",
    "RGU",
    "TRGU",
    "RGUCheckpointed",
    "RGURecursive",
    "Implicit",
    "neumann",
    "conjugate_gradient",
    "identity",
    "Neumann",
    "ConjugateGradient",
    "HessianFree",
    "Hybrid",
    "TwoPhase",
    "Scaled",
    "ControlVariate",
    "RunningControlVariate",
    "DirectionParallel",
    "make",
    "BACKEND",
    "check_finite_inputs",
    "rank_seed",
    "unroll",
    "meta_objective",
    "sample_directions",
    "optim_transition",
    "InnerState",
    "TorchOps",
    "optim",
    "module_params",
    "module_buffers",
    "functional_model",
    "gradient_quality",
]

BACKEND = Backend.collect("torch", globals())
"""Every PyTorch estimator by its registry name (see [`fg2u.estimators`][fg2u.estimators])."""


def make(name: str, **settings: Any) -> Any:
    """The PyTorch estimator registered as ``name`` with ``settings``: ``make("fg2u", num_directions=8)``.

    Names: ``fg2u.estimators.names()``; display names such as ``"FG2U"`` work too. Nested estimators of
    combinators may be names or ``{"name": ..., **settings}`` mappings.
    """
    return BACKEND.make(name, **settings)
