"""One meta step for [`run_meta_loop`][fg2u.experiment.loop.run_meta_loop] in PyTorch: gradient accumulation, the estimator's state
and a ``torch.optim`` meta optimiser over the leaves of φ."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from fg2u.checks import check_positive_int
from fg2u.experiment.memory import measure_call
from fg2u.experiment.records import Memory
from fg2u.experiment.runner import Prepared
from fg2u.torch._pytree import PyTree, is_float_tensor, tree_flatten, tree_map, tree_unflatten

__all__ = ["make_meta_step", "merge_states", "Driver"]


def merge_states(states: Sequence[PyTree]) -> PyTree:
    """The estimator state after a meta step with accumulation (all estimates started from the same state):
    floating tensors are averaged (exact for states affine in the estimate), other leaves taken from the first."""
    if len(states) == 1:
        return states[0]
    flat = [tree_flatten(s)[0] for s in states]
    spec = tree_flatten(states[0])[1]
    merged = [torch.stack(list(xs)).mean(0) if is_float_tensor(xs[0]) else xs[0] for xs in zip(*flat)]
    return tree_unflatten(merged, spec)


def make_meta_step(
    estimator: Any,
    make_problem: Callable[[Any], Any],
    optimizer: torch.optim.Optimizer,
    phi: PyTree,
    *,
    project: Callable[[PyTree], None] | None = None,
    max_grad_norm: float | None = None,
) -> Callable:
    """``step(est_state, keys, inputs) -> (est_state, outer_loss)`` updating ``phi`` (tensor leaves, in place).

    ``inputs`` is a sequence of A problem inputs (gradient accumulation, A = ``len(inputs)``) and ``keys`` as many
    generators or int seeds: estimate ``a`` is ``estimator.estimate(make_problem(inputs[a]), φ, keys[a],
    est_state)``. The mean estimate becomes ``.grad`` of φ's leaves (which ``optimizer`` must hold), is rescaled
    to global norm ``max_grad_norm`` if it is larger (the torch twin of ``optax.clip_by_global_norm``; the norm is
    computed in float64) and ``optimizer.step()`` runs; ``project(phi)`` may then modify φ in place under
    ``torch.no_grad``.
    """
    if max_grad_norm is not None and not max_grad_norm > 0:
        raise ValueError(f"max_grad_norm must be positive or None (no clipping), got {max_grad_norm!r}")
    leaves = tree_flatten(phi)[0]

    def step(est_state: Any, keys: Sequence[Any], inputs: Sequence[Any]) -> tuple[Any, float]:
        check_positive_int("len(inputs) (gradient accumulation)", len(inputs))
        if len(keys) != len(inputs):
            raise ValueError(f"one key per accumulated estimate: got {len(keys)} keys for {len(inputs)} inputs")
        total, losses, states = None, [], []
        for key, inp in zip(keys, inputs):
            grad, aux, new_state = estimator.estimate(make_problem(inp), phi, key, est_state)
            total = grad if total is None else tree_map(torch.add, total, grad)
            losses.append(float(aux.outer_loss))
            states.append(new_state)
        mean = tree_flatten(tree_map(lambda g: g / len(inputs), total))[0]
        if max_grad_norm is not None:
            norm = float(torch.sqrt(sum((g.detach().double() ** 2).sum() for g in mean)))
            if norm > max_grad_norm:
                mean = [g * (max_grad_norm / norm) for g in mean]
        for p, g in zip(leaves, mean):
            p.grad = g.detach().to(p.dtype)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if project is not None:
            with torch.no_grad():
                project(phi)
        return merge_states(states), sum(losses) / len(losses)

    return step


class Driver:
    """The PyTorch side of [`fg2u.experiment.runner`][fg2u.experiment.runner]:
    [`make_meta_step`][fg2u.torch.harness.make_meta_step] over the trial's φ (tensor leaves updated in place); its
    memory is the peak-RSS growth of the first meta step
    ([`fg2u.experiment.memory.measure_call`][fg2u.experiment.memory.measure_call], in this process: it includes one-off
    costs such as the first forward-mode pass's set-up)."""

    def prepare(self, estimator: Any, trial: Any) -> Any:
        """A [`fg2u.experiment.runner.Prepared`][fg2u.experiment.runner.Prepared] loop for ``estimator`` on
        ``trial``."""

        phi = trial.initial_phi()
        optimizer = trial.meta_optimizer()(tree_flatten(phi)[0])
        step_fn = make_meta_step(estimator, trial.make_problem, optimizer, phi, **trial.meta_step_options())

        def step(state: Any, i: int) -> tuple:
            keys, inputs = trial.next_inputs(i)
            if i > 0:
                return step_fn(state, keys, inputs)
            result, measured = measure_call(lambda: step_fn(state, keys, inputs))
            prepared.memory = Memory("peak_rss_growth", int(measured["peak_rss_growth_bytes"]))
            return result

        prepared = Prepared(step, estimator.init(phi), lambda state: phi, None, 0.0)
        return prepared

    def estimates_fn(self, estimator: Any, reference: Any, trial: Any) -> Callable:
        """``(φ, keys, inputs, reference_inputs) -> (ĝ, g)``: ``estimator``'s meta-gradient on the problem of the
        first of ``inputs`` and ``reference``'s on that of ``reference_inputs`` (the same draw in the form of
        the problem each can use), with the first of ``keys``, as flat float64 NumPy vectors."""

        def call(phi: Any, keys: Any, inputs: Any, reference_inputs: Any) -> tuple:
            flat = []
            for est, draw in ((estimator, inputs), (reference, reference_inputs)):
                trial.use_estimator(est)
                gradient = est(trial.make_problem(draw[0]), phi, keys[0])[0]
                flat.append(torch.cat([g.detach().double().reshape(-1) for g in tree_flatten(gradient)[0]]))
            return flat[0].numpy(), flat[1].numpy()

        return call
