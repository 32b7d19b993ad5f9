"""Pure functional inner optimisers with ``torch.optim`` semantics, as ``(init, update)`` pairs over
pytrees of tensors (optax style), and [`optim_transition`][fg2u.torch.optim.optim_transition], the inner-loop transition
they define.

``opt = sgd(0.1)``; ``state = opt.init(params)``; ``updates, state = opt.update(grads, state, params)``;
``params = apply_updates(params, updates)``. Nothing is modified in place, so every step is
differentiable by ``torch.autograd`` and by ``torch.func`` (jvp, vmap, grad).

Semantics (step ``t = 1, 2, …``, gradient ``g``, L2 term ``g ← g + wd·p`` when ``weight_decay > 0``):

* [`sgd`][fg2u.torch.optim.sgd] — ``p ← p − lr·g`` (``torch.optim.SGD`` without momentum).
* [`momentum`][fg2u.torch.optim.momentum] — heavy ball as ``torch.optim.SGD(momentum=μ, dampening=τ, nesterov=…)``:
  ``buf_1 = g``, ``buf_t = μ·buf_{t−1} + (1−τ)·g``; ``d = g + μ·buf_t`` (Nesterov) or ``d = buf_t``;
  ``p ← p − lr·d``.
* [`adam`][fg2u.torch.optim.adam] — ``torch.optim.Adam`` (``amsgrad=False``): ``m ← lerp(m, g, 1−β₁)``,
  ``v ← β₂v + (1−β₂)g²``, ``p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)``, with a square root whose
  derivative at ``v = 0`` is 0 (not inf), so a parameter with an exactly zero gradient does not turn
  meta-gradients into NaN.

``lr`` is a positive float, a tensor (e.g. part of φ, closed over) or a schedule ``count -> lr`` where
``count`` is the 0-d int64 tensor of steps taken so far (0 at the first step).
"""

from __future__ import annotations

import math
import numbers
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from fg2u.checks import check_callable
from fg2u.torch._attention import check_twice_differentiable
from fg2u.torch._pytree import PyTree, tree_flatten, tree_map, tree_unflatten

__all__ = [
    "Optimizer",
    "InnerState",
    "SGDState",
    "MomentumState",
    "AdamState",
    "sgd",
    "momentum",
    "adam",
    "apply_updates",
    "optim_transition",
    "GradientStep",
]


class Optimizer(NamedTuple):
    """A pure optimiser: ``init(params) -> state``, ``update(grads, state, params) -> (updates, state)``.

    ``tangent`` (optional): the Jacobian-vector product of ``update``,
    ``tangent(grads, state, params, grads_dot, state_dot, params_dot) -> (updates_dot, state_dot')``, which
    lets FG²U push tangents through the update without differentiating it twice. Tangent leaves are tensors
    that broadcast against their primal: a 0-d zero stands for a zero tangent, and a leading axis holds
    several directions at once, so the rule must be linear in the tangents and written with broadcasting
    elementwise operations; the step count's tangent is ``None``. The built-in optimisers define it.
    """

    init: Callable[[PyTree], Any]
    update: Callable[[PyTree, Any, PyTree], tuple[PyTree, Any]]
    tangent: Callable[..., tuple[PyTree, Any]] | None = None


class InnerState(NamedTuple):
    """Inner state θ = (model parameters, optimiser state); a pytree."""

    params: PyTree
    opt_state: Any


class SGDState(NamedTuple):
    count: torch.Tensor  # type: ignore[assignment]  # steps taken, 0-d int64 (shadows tuple.count)


class MomentumState(NamedTuple):
    count: torch.Tensor  # type: ignore[assignment]  # shadows tuple.count, as in optax
    momentum_buffer: PyTree


class AdamState(NamedTuple):
    count: torch.Tensor  # type: ignore[assignment]  # shadows tuple.count, as in optax
    exp_avg: PyTree
    exp_avg_sq: PyTree


def _check_lr(lr: Any) -> None:
    if callable(lr) or isinstance(lr, torch.Tensor):
        return
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, a tensor or a schedule count -> lr, got {lr!r}")


def _check_unit(name: str, value: Any, *, allow_one: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1), got {type(value).__name__}: {value!r}")
    x = float(value)
    ok = 0 <= x <= 1 if allow_one else 0 <= x < 1
    if not ok:
        raise ValueError(f"{name} must be in [0, 1{']' if allow_one else ')'}, got {value}")
    return float(value)


def _check_nonneg(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _lr_at(lr: Any, count: torch.Tensor) -> Any:
    return lr(count) if callable(lr) else lr


def _count0(params: PyTree) -> torch.Tensor:
    leaves = tree_flatten(params)[0]
    device = leaves[0].device if leaves and isinstance(leaves[0], torch.Tensor) else None
    return torch.zeros((), dtype=torch.int64, device=device)


def _with_decay(grads: PyTree, params: PyTree, weight_decay: float) -> PyTree:
    if weight_decay == 0:
        return grads
    return tree_map(lambda g, p: g + weight_decay * p, grads, params)


def sgd(lr: Any, weight_decay: float = 0.0) -> Optimizer:
    """Plain SGD, ``torch.optim.SGD(params, lr, weight_decay=wd)``: ``p ← p − lr·(g + wd·p)``."""
    _check_lr(lr)
    weight_decay = _check_nonneg("weight_decay", weight_decay)

    def init(params: PyTree) -> SGDState:
        return SGDState(_count0(params))

    def update(grads: PyTree, state: SGDState, params: PyTree) -> tuple[PyTree, SGDState]:
        neg_lr = -_lr_at(lr, state.count)  # g * (−lr): Tensor.__mul__ (a Python float first goes through __rmul__)
        updates = tree_map(lambda g: g * neg_lr, _with_decay(grads, params, weight_decay))
        return updates, SGDState(state.count + 1)

    def tangent(grads: PyTree, state: SGDState, params: PyTree, g_dot: PyTree, s_dot: Any, p_dot: PyTree) -> Any:
        neg_lr = -_lr_at(lr, state.count)
        return tree_map(lambda g: g * neg_lr, _with_decay(g_dot, p_dot, weight_decay)), SGDState(None)  # type: ignore[arg-type]  # the step count has no tangent

    return Optimizer(init, update, tangent)


def momentum(
    lr: Any, momentum: float = 0.9, dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False
) -> Optimizer:
    """Heavy-ball SGD with ``torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov)`` semantics
    (the first step sets the buffer to the gradient itself, undamped)."""
    _check_lr(lr)
    mu = _check_unit("momentum", momentum)
    tau = _check_unit("dampening", dampening, allow_one=True)
    weight_decay = _check_nonneg("weight_decay", weight_decay)
    if nesterov and (mu <= 0 or tau != 0):
        raise ValueError("nesterov momentum requires momentum > 0 and dampening = 0 (as in torch.optim.SGD)")

    def init(params: PyTree) -> MomentumState:
        return MomentumState(_count0(params), tree_map(torch.zeros_like, params))

    def update(grads: PyTree, state: MomentumState, params: PyTree) -> tuple[PyTree, MomentumState]:
        d_p = _with_decay(grads, params, weight_decay)
        first = state.count == 0
        buf = tree_map(lambda b, g: torch.where(first, g, mu * b + (1 - tau) * g), state.momentum_buffer, d_p)
        direction = tree_map(lambda g, b: g + mu * b, d_p, buf) if nesterov else buf
        neg_lr = -_lr_at(lr, state.count)
        updates = tree_map(lambda d: d * neg_lr, direction)
        return updates, MomentumState(state.count + 1, buf)

    def tangent(
        grads: PyTree, state: MomentumState, params: PyTree, g_dot: PyTree, s_dot: MomentumState, p_dot: PyTree
    ) -> Any:
        d_dot = _with_decay(g_dot, p_dot, weight_decay)
        first = state.count == 0
        buf = tree_map(lambda b, g: torch.where(first, g, mu * b + (1 - tau) * g), s_dot.momentum_buffer, d_dot)
        direction = tree_map(lambda g, b: g + mu * b, d_dot, buf) if nesterov else buf
        neg_lr = -_lr_at(lr, state.count)
        return tree_map(lambda d: d * neg_lr, direction), MomentumState(None, buf)  # type: ignore[arg-type]  # no tangent for the count

    return Optimizer(init, update, tangent)


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``√x`` with derivative 0 at ``x = 0`` instead of inf (the double-``where`` keeps NaN out of the
    tangents and cotangents of the masked branch)."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def adam(
    lr: Any = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    eps_root: float = 0.0,
) -> Optimizer:
    """Adam with ``torch.optim.Adam(lr, betas, eps, weight_decay, amsgrad=False)`` semantics (L2 weight
    decay added to the gradient; the bias corrections are computed in float64, as torch does in Python),
    and with a derivative that stays finite at a parameter whose gradient is exactly zero.

    At ``v = 0`` the derivative of ``√v`` is infinite, so a plain differentiable Adam makes every
    meta-gradient NaN as soon as one parameter's gradient is exactly zero (a blank pixel's weight, an unused
    embedding). Here ``√v`` is a "safe" square root: the same value everywhere, derivative ``1/(2√v)`` for
    ``v > 0`` and ``0`` at ``v = 0`` (the zero subgradient of ``|g|`` at ``g = 0``), so the values equal
    ``torch.optim.Adam``'s exactly and the meta-gradient is finite. ``eps_root > 0`` instead uses
    ``√(v̂ + eps_root)`` with ``v̂ = v/(1−β₂ᵗ)``, as ``optax.adam(eps_root=...)`` (values then differ slightly).
    """
    _check_lr(lr)
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    beta1, beta2 = _check_unit("betas[0]", betas[0]), _check_unit("betas[1]", betas[1])
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps > 0:
        raise ValueError(f"eps must be a number > 0, got {eps!r}")
    weight_decay = _check_nonneg("weight_decay", weight_decay)
    eps_root = _check_nonneg("eps_root", eps_root)

    def init(params: PyTree) -> AdamState:
        zeros = tree_map(torch.zeros_like, params)
        return AdamState(_count0(params), zeros, tree_map(torch.zeros_like, params))

    def moments(grads: PyTree, state: AdamState, params: PyTree) -> tuple:
        """``(g, 1 − β₁ᵗ, 1 − β₂ᵗ, lr_t, m_t, v_t)`` of the step from ``state`` (t = count + 1)."""
        g = _with_decay(grads, params, weight_decay)
        t = (state.count + 1).to(torch.float64)
        m = tree_map(lambda m_, g_: torch.lerp(m_, g_, 1 - beta1), state.exp_avg, g)
        v = tree_map(lambda v_, g_: beta2 * v_ + (1 - beta2) * g_ * g_, state.exp_avg_sq, g)
        return g, 1 - beta1**t, 1 - beta2**t, _lr_at(lr, state.count), m, v

    def update(grads: PyTree, state: AdamState, params: PyTree) -> tuple[PyTree, AdamState]:
        _, bias1, bias2, step_lr, m, v = moments(grads, state, params)

        def one(m_: torch.Tensor, v_: torch.Tensor) -> torch.Tensor:
            step_size = (step_lr / bias1).to(m_.dtype)
            if eps_root == 0:  # torch.optim.Adam's values, a finite derivative at v = 0
                denom = _safe_sqrt(v_) / torch.sqrt(bias2).to(v_.dtype) + eps
            else:
                denom = torch.sqrt(v_ / bias2.to(v_.dtype) + eps_root) + eps
            return -step_size * m_ / denom

        updates = tree_map(one, m, v)
        return updates, AdamState(state.count + 1, m, v)

    def tangent(grads: PyTree, state: AdamState, params: PyTree, g_dot: PyTree, s_dot: AdamState, p_dot: PyTree) -> Any:
        g, bias1, bias2, step_lr, m, v = moments(grads, state, params)
        gd = _with_decay(g_dot, p_dot, weight_decay)
        m_dot = tree_map(lambda m_, g_: m_ + (1 - beta1) * (g_ - m_), s_dot.exp_avg, gd)
        v_dot = tree_map(lambda v_, g_, gd_: beta2 * v_ + (2 * (1 - beta2)) * g_ * gd_, s_dot.exp_avg_sq, g, gd)

        def one(m_: torch.Tensor, v_: torch.Tensor, md: torch.Tensor, vd: torch.Tensor) -> torch.Tensor:
            step_size = (step_lr / bias1).to(m_.dtype)
            if eps_root == 0:  # d√v = v̇ / (2√v) for v > 0 and 0 at v = 0 (the safe square root's derivative)
                root = _safe_sqrt(v_)
                scale = torch.sqrt(bias2).to(v_.dtype)
                half_inv = torch.where(root > 0, 0.5 / torch.where(root > 0, root, torch.ones_like(root)), 0.0)
                denom, denom_dot = root / scale + eps, vd * half_inv / scale
            else:
                root = torch.sqrt(v_ / bias2.to(v_.dtype) + eps_root)
                denom, denom_dot = root + eps, vd / bias2.to(v_.dtype) * (0.5 / root)
            return -step_size * (md / denom - m_ * denom_dot / (denom * denom))

        return tree_map(one, m, v, m_dot, v_dot), AdamState(None, m_dot, v_dot)

    return Optimizer(init, update, tangent)


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """``params + updates`` leafwise (each result in the dtype of its parameter)."""
    return tree_map(lambda p, u: _add(p, u), params, updates)


def _add(p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    out = p + u
    return out if out.dtype == p.dtype else out.to(p.dtype)


def _flatten_params(params: PyTree) -> tuple[list, Callable[[list], PyTree]]:
    """``(leaves, rebuild)`` of a parameter pytree; a plain dict of tensors (the commonest inner state) skips
    the generic flatten/unflatten, which costs tens of microseconds every inner step."""
    if type(params) is dict and all(isinstance(x, torch.Tensor) for x in params.values()):
        keys = list(params)
        return list(params.values()), lambda values: dict(zip(keys, values))
    leaves, spec = tree_flatten(params)
    return leaves, lambda values: tree_unflatten(values, spec)


def _NOT_A_TENSOR() -> None:  # noqa: N802 - stands in for a weak reference to a non-tensor leaf (never matches)
    return None


def _autograd_grad(
    scalar_loss: Callable[[PyTree, PyTree, Any], torch.Tensor],
    params: PyTree,
    phi: PyTree,
    batch: Any,
    made_by_step: Sequence[Callable[[], Any]] = (),
) -> PyTree:
    """``∇_params scalar_loss(params, φ, batch)`` by ``torch.autograd.grad``, as ``torch.func.grad`` would
    give it: the partial derivative in ``params`` alone (each float leaf enters through its own alias, so
    a leaf that is also part of φ, appears twice or feeds another leaf is not mixed up), zeros for leaves
    the loss does not use, and — when grad mode is on — a result that is differentiable in everything
    ``params`` and φ depend on (``create_graph=True``). Under ``torch.no_grad`` the result is a plain tensor
    (no graph is kept).

    ``made_by_step``: weak references to the parameter leaves the previous
    [`GradientStep.apply`][fg2u.torch.optim.GradientStep.apply] made (``p + u``, fresh tensors: none is a leaf of φ,
    none appears twice, none is computed from another). When ``params`` holds exactly those tensors the aliases are
    skipped — the gradient in them is already the partial derivative — which saves one view and one backward node per
    leaf and step (reverse unrolling through ``optim_transition`` then costs what a hand-written ``torch.autograd.grad``
    step costs)."""
    create = torch.is_grad_enabled()
    leaves, rebuild = _flatten_params(params)
    floats = [i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor) and x.is_floating_point()]
    fresh = create and len(made_by_step) == len(leaves) and all(r() is x for r, x in zip(made_by_step, leaves))
    aliased = list(leaves)
    for i in floats:
        x = leaves[i]
        if fresh and x.requires_grad:
            continue
        # an alias (a view) of a tensor that requires grad keeps its history (the derivative of g in φ flows
        # through it) while the gradient is taken in this use alone: not through φ when x is also a leaf of
        # φ, not through another leaf of params computed from x. A constant becomes a fresh leaf.
        aliased[i] = x.view_as(x) if (create and x.requires_grad) else x.detach().requires_grad_(True)
    wrt = [aliased[i] for i in floats]
    with torch.enable_grad():
        loss = scalar_loss(rebuild(aliased), phi, batch)
        if create:
            # the gradient will be differentiated again: a fused attention kernel cannot be (an error later,
            # or for the flash_attn package a silently wrong meta-gradient)
            check_twice_differentiable(scalar_loss, loss, "optim_transition's inner loss")
        if loss.requires_grad and wrt:
            grads: list = list(torch.autograd.grad(loss, wrt, create_graph=create, allow_unused=True))
        else:
            grads = [None] * len(wrt)
    out = list(leaves)
    for i, g in zip(floats, grads):
        out[i] = torch.zeros_like(leaves[i]) if g is None else g
    return rebuild(out)


def optim_transition(
    inner_loss: Callable[[PyTree, PyTree, Any], torch.Tensor],
    optimizer: Optimizer,
    init_params: PyTree | Callable[[PyTree], PyTree],
) -> tuple[Callable[[PyTree], InnerState], Callable[[InnerState, PyTree, Any], InnerState]]:
    """``(init, step)`` for [`fg2u.UnrolledProblem`][fg2u.problem.UnrolledProblem] from an inner loss and a pure
    optimiser.

    * ``init(φ) -> InnerState(params_0, optimizer.init(params_0))`` with ``params_0 = init_params(φ)``
      when ``init_params`` is callable, else (a copy of) the pytree ``init_params`` itself.
    * ``step(state, φ, batch)``: ``g = ∇_params inner_loss(params, φ, batch)``,
      ``u, s' = optimizer.update(g, s, params)``, ``params' = params + u``.

    The inner gradient is taken by ``torch.autograd.grad(..., create_graph=True)`` (with a graph only
    when grad mode is on), which is what reverse unrolling pays least for: a step under ``torch.func.grad``
    costs reverse unrolling about twice the time (functorch wraps every tensor of the step and its backward).
    Inside a ``torch.func`` transform (``jvp``, ``vmap``, ``grad`` of the unroll) the step uses
    ``torch.func.grad`` instead, so it composes with the transform; both give the same numbers.

    Mirrors ``fg2u.jax.optax_transition``. Every step is differentiable in φ by reverse mode (autograd,
    checkpointing) and forward mode (``torch.func.jvp``, vmapped), as the estimators need.
    """
    check_callable("inner_loss", inner_loss)
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            f"optimizer must be an fg2u.torch.optim.Optimizer (init, update), e.g. optim.sgd(0.1); "
            f"got {type(optimizer).__name__}"
        )

    def scalar_loss(params: PyTree, phi: PyTree, batch: Any) -> torch.Tensor:
        loss = inner_loss(params, phi, batch)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError(f"inner_loss must return a scalar tensor, got {loss!r}")
        return loss.reshape(())

    def init(phi: PyTree) -> InnerState:
        if callable(init_params):
            params = init_params(phi)
        else:
            params = tree_map(lambda x: x.detach().clone() if isinstance(x, torch.Tensor) else x, init_params)
        return InnerState(params, optimizer.init(params))

    return init, GradientStep(scalar_loss, optimizer)


class GradientStep:
    """The step of [`optim_transition`][fg2u.torch.optim.optim_transition]: ``step(state, φ, batch) -> state'`` (see
    there).

    A class rather than a closure so that the FG²U kernel (`fg2u.torch._tangent`) can recognise a
    gradient step and push tangents through it at the cost of one Hessian-vector product
    (``loss``: the scalar inner loss; ``optimizer``: the pure optimiser)."""

    def __init__(self, loss: Callable[[PyTree, PyTree, Any], torch.Tensor], optimizer: Optimizer) -> None:
        self.loss = loss
        self.optimizer = optimizer
        self._func_grad = torch.func.grad(loss)
        self._made: tuple[Callable[[], Any], ...] = ()  # weak references to the parameter leaves apply() made last

    def grad(self, params: PyTree, phi: PyTree, batch: Any) -> PyTree:
        """``∇_params loss(params, φ, batch)``: by ``torch.autograd.grad`` (`_autograd_grad`), or by
        ``torch.func.grad`` inside a ``torch.func`` transform, so that it composes with the transform."""
        if torch._C._functorch.peek_interpreter_stack() is not None:
            return self._func_grad(params, phi, batch)
        return _autograd_grad(self.loss, params, phi, batch, self._made)

    def apply(self, grads: PyTree, state: InnerState) -> InnerState:
        """``InnerState(params + u, s')`` with ``u, s' = optimizer.update(grads, s, params)``."""
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = apply_updates(state.params, updates)
        leaves = _flatten_params(params)[0]
        self._made = tuple(weakref.ref(x) if isinstance(x, torch.Tensor) else _NOT_A_TENSOR for x in leaves)
        return InnerState(params, opt_state)

    def __call__(self, state: InnerState, phi: PyTree, batch: Any) -> InnerState:
        return self.apply(self.grad(state.params, phi, batch), state)
