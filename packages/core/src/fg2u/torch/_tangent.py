"""Forward-mode tangents through an unrolled loop by the double-vjp trick, one step's graph at a time.

For a transition ``θ' = Φ(θ, φ)`` the tangent ``Z' = ∂Φ/∂θ·Z + ∂Φ/∂φ·v`` is a Jacobian-vector product.
PyTorch's forward-mode AD (``torch.func.jvp``) pays a large per-operation overhead on dual tensors, and
more when the step itself calls ``torch.func.grad``. Reverse mode is cheaper per operation, and a jvp is
the derivative of a vjp with respect to its (dummy) cotangent:

    g(u) = (∂Φ/∂θ)ᵀ u, (∂Φ/∂φ)ᵀ u         (one backward pass with ``create_graph=True``; linear in u)
    ∂/∂u ⟨g(u), (Z, v)⟩ = ∂Φ/∂θ·Z + ∂Φ/∂φ·v   (a second backward pass, through the first one)

The graph recorded at step t covers that step only and is freed before step t + 1, so memory does not
grow with T (it holds θ_t, the c tangents of a chunk and one step's intermediates). Several directions
share the primal pass and the first backward; the second backward is batched over them with
``torch.autograd.grad(..., is_grads_batched=True)`` (a vmap over the cotangents), falling back to one
backward per direction where the graph has no batching rule. At the end,
``∇L·v = ∇_θF(θ_T, φ)·Z_T + ∇_φF(θ_T, φ)·v`` takes one plain backward pass of F, shared by all directions.

A step made by [`fg2u.torch.optim_transition`][fg2u.torch.optim_transition] (a
[`GradientStep`][fg2u.torch.optim.GradientStep], ``θ' = (p + u(∇_p ℓ, s, p), s')``) takes a shorter path: the tangent of
the inner gradient is one Hessian-vector product, ``∇²_pp ℓ·Z_p + ∇²_pφ ℓ·v`` = the vjp of ``(∇_p ℓ, ∇_φ ℓ)`` in ``p``
with cotangent ``(Z_p, v)`` (one backward pass through the gradient's graph instead of two nested ones), and the
built-in optimisers push it through their update by their own tangent rule (``Optimizer.tangent``, no graph), so a
direction costs about one reverse-mode step per step.

The step must be differentiable twice by ``torch.autograd`` (steps that compute inner gradients with
``torch.func.grad`` or with ``torch.autograd.grad(create_graph=True)`` both are). Random operations inside
the step draw once per step and are shared by the directions (as ``vmap(randomness="same")`` would).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.utils._pytree as _pt

from fg2u.torch import _chunks
from fg2u.torch._attention import check_twice_differentiable, fused_attention_error
from fg2u.torch._chunks import chunked_direction_sum, weighted_direction_sum
from fg2u.torch._pytree import PyTree, check_same_structure, detach, tree_flatten, tree_unflatten
from fg2u.torch.optim import GradientStep, apply_updates
from fg2u.torch.unroll import _as_scalar, check_unrolled_problem, meta_objective

__all__ = ["directional_derivatives", "forward_estimate"]


def _batched_grad(outputs: list, inputs: list, cotangents: list, batched: bool) -> list:
    """``[Σ_j ∂outputs_j/∂inputs_k · cotangents_j]_k``, each with the leading batch axis when ``batched``;
    ``None`` for an input the outputs do not depend on.

    Batched: ``torch.func.vmap`` over the cotangents of one backward pass (what ``is_grads_batched`` does);
    if vmap cannot batch some backward formula of the graph, one backward pass per direction (a
    ``RuntimeWarning`` says so once; same result, slower).
    """
    if not batched:
        return list(torch.autograd.grad(outputs, inputs, grad_outputs=cotangents, allow_unused=True))

    used = [True] * len(inputs)

    def one(*ws: torch.Tensor) -> tuple:
        grads = torch.autograd.grad(outputs, inputs, grad_outputs=list(ws), allow_unused=True, retain_graph=True)
        for k, g in enumerate(grads):  # known while tracing: vmap cannot return None, so mark and zero-fill
            used[k] = used[k] and g is not None
        return tuple(torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs))

    try:
        stacked = torch.func.vmap(one)(*cotangents)
        return [g if u else None for g, u in zip(stacked, used)]
    except (RuntimeError, NotImplementedError, ValueError, TypeError) as err:
        _warn_loop(err)
    c = cotangents[0].shape[0]
    columns = [
        torch.autograd.grad(
            outputs, inputs, grad_outputs=[w[i] for w in cotangents], allow_unused=True, retain_graph=i < c - 1
        )
        for i in range(c)
    ]
    return [None if columns[0][k] is None else torch.stack([col[k] for col in columns]) for k in range(len(inputs))]


def _warn_loop(err: BaseException) -> None:
    if "FG2U" in _chunks._warned:
        return
    _chunks._warned.add("FG2U")
    warnings.warn(
        f"FG2U: torch.func.vmap could not batch the directions of this problem ({type(err).__name__}: "
        f"{str(err).splitlines()[0][:200]}); falling back to a loop over the directions of each chunk "
        "(same result, slower)",
        RuntimeWarning,
        stacklevel=6,
    )


def _tangent_map(outputs: list, inputs: list, tangents: list, batched: bool) -> list:
    """``[Σ_k ∂outputs_j/∂inputs_k · tangents_k]_j`` (a jvp) by two vjps; ``None`` where it is identically zero.

    ``outputs``: tensors that require grad, computed from ``inputs`` (leaves requiring grad) in the current
    graph; ``tangents[k]`` matches ``inputs[k]`` (with a leading batch axis when ``batched``).
    """
    dummies = [torch.zeros_like(o, requires_grad=True) for o in outputs]
    pulled = torch.autograd.grad(outputs, inputs, grad_outputs=dummies, create_graph=True, allow_unused=True)
    pairs = [(g, w) for g, w in zip(pulled, tangents) if g is not None and g.requires_grad]
    if not pairs:
        return [None] * len(outputs)
    return _batched_grad([g for g, _ in pairs], dummies, [w for _, w in pairs], batched)


def _is_float(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _differentiable(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point() and x.requires_grad


def _slicer(inner_batches: Any):
    """``t ↦ inner_batches[t]`` with the pytree flattened once (not per step)."""
    if inner_batches is None:
        return lambda t: None
    leaves, spec = tree_flatten(inner_batches)
    tensors = [isinstance(x, torch.Tensor) for x in leaves]
    return lambda t: tree_unflatten([x[t] if is_t else x for x, is_t in zip(leaves, tensors)], spec)


def _gradient_step_tangent(
    step: GradientStep,
    leaves: list,
    state_spec: Any,
    z: list,
    phi: PyTree,
    phi_req: list,
    v_phi: list,
    batch: Any,
    batched: bool,
) -> tuple[PyTree, list, list]:
    """``(θ_{t+1}, its leaves (detached), their tangents)`` for a [`GradientStep`][fg2u.torch.optim.GradientStep]
    ``θ' = (p + u(g, s, p), s')`` with ``g = ∇_p ℓ(p, φ)``, at the cost of one Hessian-vector product.

    The tangent of the inner gradient is ``ġ = ∇²_pp ℓ·Z_p + ∇²_pφ ℓ·v``: the vjp of ``(∇_p ℓ, ∇_φ ℓ)`` in
    ``p`` with cotangent ``(Z_p, v)`` (the Hessian of ℓ in (p, φ) is symmetric), one backward pass through
    the gradient's graph — where the generic kernel differentiates through that graph twice. The
    optimiser's update (a few elementwise operations) then maps ``(ġ, Z_s, Z_p)`` to the new tangents by
    its own rule (``Optimizer.tangent``, no graph at all), or by the generic double-vjp for an optimiser
    without one. ``leaves``/``z``: θ_t's leaves (detached) and tangents (``None`` = zero)."""
    state = tree_unflatten(leaves, state_spec)
    p_leaves, p_spec = tree_flatten(state.params)
    floats = [i for i, x in enumerate(p_leaves) if _is_float(x)]
    p_req = list(p_leaves)
    for i in floats:
        p_req[i] = p_leaves[i].detach().requires_grad_(True)
    wrt_p = [p_req[i] for i in floats]
    with torch.enable_grad():
        loss = step.loss(tree_unflatten(p_req, p_spec), phi, batch)
        check_twice_differentiable(step.loss, loss, "optim_transition's inner loss")  # e.g. no flash_attn
        wrt = wrt_p + phi_req
        grads: list = (
            list(torch.autograd.grad(loss, wrt, create_graph=True, allow_unused=True)) if loss.requires_grad else []
        )
    grads = grads or [None] * len(wrt)
    pairs = [
        (g, w)
        for g, w in zip(grads, [z[i] for i in floats] + v_phi)
        if g is not None and w is not None and g.requires_grad
    ]
    g_dot = _batched_grad([g for g, _ in pairs], wrt_p, [w for _, w in pairs], batched) if pairs else []
    # detached: under vmap the batched vjp's results can still reference this step's graph
    g_dot = [None if d is None else d.detach() for d in g_dot] or [None] * len(wrt_p)

    g_leaves = list(p_leaves)
    for k, i in enumerate(floats):
        g_leaves[i] = torch.zeros_like(p_leaves[i]) if grads[k] is None else grads[k].detach()
    if getattr(step.optimizer, "tangent", None) is not None:
        return _update_tangent_rule(step, state, p_leaves, p_spec, g_leaves, g_dot, floats, leaves, z, batched)

    # the update: inputs g (tangent ġ) and θ_t's float leaves (tangent Z); the generic double-vjp
    g_in = []
    for k, i in enumerate(floats):
        if g_dot[k] is not None:
            g_leaves[i] = g_leaves[i].requires_grad_(True)
            g_in.append((g_leaves[i], g_dot[k]))
    s_leaves = [x.detach().requires_grad_(True) if _is_float(x) and zi is not None else x for x, zi in zip(leaves, z)]
    s_in = [(x, zi) for x, zi in zip(s_leaves, z) if zi is not None]
    with torch.enable_grad():
        new_state = step.apply(tree_unflatten(g_leaves, p_spec), tree_unflatten(s_leaves, state_spec))
    new_leaves = tree_flatten(new_state)[0]
    new_z: list = [None] * len(new_leaves)
    outs = [i for i, x in enumerate(new_leaves) if _differentiable(x)]
    inputs = g_in + s_in
    if outs and inputs:
        mapped = _tangent_map([new_leaves[i] for i in outs], [x for x, _ in inputs], [w for _, w in inputs], batched)
        for i, zi in zip(outs, mapped):
            new_z[i] = zi
    return new_state, [x.detach() if isinstance(x, torch.Tensor) else x for x in new_leaves], new_z


def _update_tangent_rule(
    step: GradientStep,
    state: Any,
    p_leaves: list,
    p_spec: Any,
    g_leaves: list,
    g_dot: list,
    floats: list,
    leaves: list,
    z: list,
    batched: bool,
) -> tuple[PyTree, list, list]:
    """The update's tangent by the optimiser's own Jacobian-vector product (``Optimizer.tangent``): no graph,
    a few elementwise operations. Zero tangents enter as 0-d zeros; a result that does not have its
    primal's (batched) shape was built from zeros only (the rule is linear), so it is a zero tangent."""
    n = len(p_leaves)

    def placeholder(x: Any, t: Any) -> Any:
        if t is not None or not _is_float(x):
            return t
        return torch.zeros((), dtype=x.dtype, device=x.device)

    g_dot_leaves: list = [None] * n
    for k, i in enumerate(floats):
        g_dot_leaves[i] = placeholder(p_leaves[i], g_dot[k])
    z_dot = [placeholder(x, t) for x, t in zip(leaves, z)]
    opt_spec = tree_flatten(state.opt_state)[1]
    with torch.no_grad():
        grads = tree_unflatten(g_leaves, p_spec)
        updates, opt_state = step.optimizer.update(grads, state.opt_state, state.params)
        u_dot, opt_dot = cast(Any, step.optimizer.tangent)(
            grads,
            state.opt_state,
            state.params,
            tree_unflatten(g_dot_leaves, p_spec),
            tree_unflatten(z_dot[n:], opt_spec),
            tree_unflatten(z_dot[:n], p_spec),
        )
        new_state = type(state)(apply_updates(state.params, updates), opt_state)
        new_leaves = tree_flatten(new_state)[0]
        u_dot_leaves = _pt.tree_flatten(u_dot, is_leaf=lambda x: x is None)[0]
        p_dot = [
            (zp + ud).to(p.dtype) if _is_float(p) else None for p, zp, ud in zip(p_leaves, z_dot[:n], u_dot_leaves)
        ]
        dots = p_dot + _pt.tree_flatten(opt_dot, is_leaf=lambda x: x is None)[0]
    if len(dots) != len(new_leaves):
        raise ValueError(
            f"{type(step.optimizer).__name__}.tangent returned {len(dots)} tangent leaves for a state of "
            f"{len(new_leaves)} leaves; it must mirror update's structure (None for the step count)"
        )
    return new_state, new_leaves, [_full_tangent(t, x, batched) for x, t in zip(new_leaves, dots)]


def _full_tangent(t: Any, x: Any, batched: bool) -> Any:
    """``t`` when it has the shape of a tangent of ``x`` (``(c, *x.shape)`` when batched), else ``None``."""
    if t is None or not _is_float(x) or t.dim() != x.dim() + int(batched):
        return None
    return t if t.shape[int(batched) :] == x.shape else None


def _check_step_output(new_state: PyTree, leaves: list, state_spec: Any, phi: PyTree) -> None:
    check_same_structure(
        new_state, tree_unflatten(leaves, state_spec), "the state returned by step", "the state passed to step", phi=phi
    )


def directional_derivatives(
    problem: Any, phi_leaves: Sequence[torch.Tensor], spec: Any, directions: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(∇L(φ)·v_i for i < c, L(φ))`` for the ``c`` directions ``directions`` (leaves of φ, leading axis c).

    Args:
      problem: an [`fg2u.UnrolledProblem`][fg2u.problem.UnrolledProblem].
      phi_leaves, spec: the flattened meta-parameters φ.
      directions: one tensor per leaf of φ, shape ``(c, *leaf.shape)``, dtype of the leaf.

    Returns ``(derivatives (c,), loss ())``, both detached, in φ's dtype. The computation runs the primal
    loop once, whatever c, with the tangents ``Z_t ∈ R^{c × |θ|}`` alongside (see the module docstring).
    """
    num_steps = check_unrolled_problem(problem, "FG2U")
    c = int(directions[0].shape[0])
    batched = c > 1

    def tangents_of(vs: Sequence[torch.Tensor]) -> list:
        return list(vs) if batched else [v[0] for v in vs]

    phi_req = [p.detach().requires_grad_(True) for p in phi_leaves]
    phi = tree_unflatten(phi_req, spec)
    v_phi = tangents_of(directions)
    batch_at = _slicer(problem.inner_batches)

    # θ_0 = init(φ): Z_0 = ∂init/∂φ · v (None when θ_0 does not depend on φ)
    with torch.enable_grad():
        state = problem.init(phi)
    leaves, state_spec = tree_flatten(state)
    outs = [i for i, x in enumerate(leaves) if _differentiable(x)]
    z: list = [None] * len(leaves)
    if outs:
        for i, zi in zip(outs, _tangent_map([leaves[i] for i in outs], phi_req, v_phi, batched)):
            z[i] = zi
    leaves = [x.detach() if isinstance(x, torch.Tensor) else x for x in leaves]

    fast = isinstance(problem.step, GradientStep)
    for t in range(num_steps):
        if fast:
            new_state, new_leaves, z = _gradient_step_tangent(
                problem.step, leaves, state_spec, z, phi, phi_req, v_phi, batch_at(t), batched
            )
            if t == 0:
                _check_step_output(new_state, leaves, state_spec, phi)
            leaves = new_leaves
            del new_state
            continue
        # every float leaf of θ_t is a fresh leaf requiring grad (a step may differentiate through it with
        # torch.autograd.grad); only those with a non-zero tangent enter the tangent map
        leaves = [x.detach().requires_grad_(True) if _is_float(x) else x for x in leaves]
        moving = [i for i, zi in enumerate(z) if zi is not None]
        inputs = [leaves[i] for i in moving]
        with torch.enable_grad():
            new_state = problem.step(tree_unflatten(leaves, state_spec), phi, batch_at(t))
        new_leaves, new_spec = tree_flatten(new_state)
        if t == 0:
            _check_step_output(new_state, leaves, state_spec, phi)
        outs = [i for i, x in enumerate(new_leaves) if _differentiable(x)]
        new_z: list = [None] * len(new_leaves)
        if outs:
            mapped = _tangent_map(
                [new_leaves[i] for i in outs], inputs + phi_req, [z[i] for i in moving] + v_phi, batched
            )
            for i, zi in zip(outs, mapped):
                new_z[i] = zi
        z = new_z
        leaves = [x.detach() if isinstance(x, torch.Tensor) else x for x in new_leaves]
        del new_state, new_leaves, inputs

    # ∇L·v = ∇_θF·Z_T + ∇_φF·v: one backward pass of F, then dot products with the c tangents
    moving = [i for i, zi in enumerate(z) if zi is not None]
    inputs = [leaves[i].requires_grad_(True) for i in moving]
    with torch.enable_grad():
        loss = _as_scalar(
            problem.outer_loss(tree_unflatten(leaves, state_spec), phi, problem.outer_batch), "outer_loss", phi
        )
        wrt = inputs + phi_req
        grads = torch.autograd.grad(loss, wrt, allow_unused=True) if loss.requires_grad else [None] * len(wrt)
    derivative = torch.zeros(c, dtype=loss.dtype, device=loss.device)
    for g, w in zip(grads, [z[i] for i in moving] + v_phi):
        if g is not None:
            w = w if batched else w.unsqueeze(0)
            derivative = derivative + (w.reshape(c, -1) @ g.reshape(-1).to(w.dtype)).to(loss.dtype)
    return derivative.detach(), loss.detach()


_warned: set[str] = set()


def _jvp_estimate(
    who: str, problem: Any, phi: PyTree, dir_leaves: list, spec: Any, b: int, chunk_size: int | None
) -> tuple[PyTree, torch.Tensor]:
    """The reference path: one ``torch.func.jvp`` through the whole unroll per direction, vmapped in chunks."""
    objective = meta_objective(problem)
    phi = detach(phi)

    def per_direction(v_leaves: list) -> tuple[torch.Tensor, torch.Tensor]:
        # torch.func.jvp is annotated with a 2- or 3-tuple (has_aux); without has_aux it is (out, jvp_out)
        loss, derivative = cast(
            tuple[torch.Tensor, torch.Tensor], torch.func.jvp(objective, (phi,), (tree_unflatten(v_leaves, spec),))
        )
        return derivative, loss

    # forward-mode AD records no reverse graph; no_grad also stops autograd from recording the primal
    # loop when the problem closes over tensors that require grad (memory stays flat in T)
    with torch.no_grad():
        total, _, loss = weighted_direction_sum(per_direction, dir_leaves, spec, b, chunk_size, who)
    return total, loss


def forward_estimate(
    who: str, problem: Any, phi: PyTree, dir_leaves: list, spec: Any, b: int, chunk_size: int | None
) -> tuple[PyTree, torch.Tensor]:
    """``(Σ_i (∇L·v_i) v_i, L(φ))`` over the ``b`` directions ``dir_leaves`` (leaves of φ, leading axis b).

    Chunks of ``chunk_size`` directions (``None``: all b) run one after the other, each through
    `directional_derivatives` (one primal loop per chunk, tangents batched). When the step cannot be
    differentiated twice by ``torch.autograd`` (e.g. a custom ``autograd.Function`` without double backward),
    a ``RuntimeWarning`` says so once and every chunk uses ``torch.func.jvp`` instead (same result, slower).
    """
    if torch._C._functorch.peek_interpreter_stack() is not None:
        # inside a torch.func transform of the estimator itself (e.g. vmap over many estimates): autograd
        # graphs cannot be built there, forward mode composes
        try:
            return _jvp_estimate(who, problem, phi, dir_leaves, spec, b, chunk_size)
        except (RuntimeError, NotImplementedError) as err:
            explained = fused_attention_error(who, err)
            if explained is None:
                raise
            raise explained from err
    phi_leaves = [p.detach() for p in tree_flatten(phi)[0]]

    def per_chunk(chunk: list) -> tuple[torch.Tensor, torch.Tensor]:
        return directional_derivatives(problem, phi_leaves, spec, chunk)

    try:
        return chunked_direction_sum(per_chunk, dir_leaves, spec, b, chunk_size)
    except (RuntimeError, NotImplementedError) as err:
        kernel_error = err
    try:
        result = _jvp_estimate(who, problem, phi, dir_leaves, spec, b, chunk_size)
    except Exception as jvp_error:
        # a fused attention kernel (no forward AD, no double backward) is named with its fix
        explained = fused_attention_error(who, jvp_error, kernel_error)
        if explained is not None:
            raise explained from kernel_error
        raise kernel_error  # noqa: B904 - the problem is genuinely broken: report the first error
    if who not in _warned:
        _warned.add(who)
        warnings.warn(
            f"{who}: the step could not be differentiated twice by torch.autograd "
            f"({type(kernel_error).__name__}: {str(kernel_error).splitlines()[0][:200]}); using torch.func.jvp "
            "through the unroll instead (same result, slower)",
            RuntimeWarning,
            stacklevel=4,
        )
    return result
