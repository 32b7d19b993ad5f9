"""``fg2u.jax`` — the JAX backend: every meta-gradient estimator, jit-able, the inner loop a ``lax.scan``.

Example (φ = per-example log-weights of a least-squares inner loss; runs as is)::

    import jax, jax.numpy as jnp, optax
    from fg2u import UnrolledProblem
    from fg2u.jax import FG2U, RGU, make, optax_transition

    X = jax.random.normal(jax.random.key(1), (32, 5))
    y = X @ jnp.arange(5.0) + 0.1 * jax.random.normal(jax.random.key(2), (32,))
    xs, ys, idx = jnp.broadcast_to(X, (100, 32, 5)), jnp.broadcast_to(y, (100, 32)), jnp.tile(jnp.arange(32), (100, 1))
    loss = lambda w, phi, b: jnp.mean(jax.nn.sigmoid(phi[b[2]]) * (b[0] @ w - b[1]) ** 2)  # φ: example weights
    init, step = optax_transition(loss, optax.adam(1e-2, eps_root=1e-8), jnp.zeros(5))
    problem = UnrolledProblem(init, step, lambda s, phi, b: jnp.mean((b[0] @ s.params - b[1]) ** 2),
                              num_steps=100, inner_batches=(xs, ys, idx), outer_batch=(X[:8], y[:8]))
    phi = jnp.zeros(32)
    grad, aux = jax.jit(FG2U(num_directions=8, chunk_size=4))(problem, phi, jax.random.key(0))
    exact, _ = jax.jit(RGU())(problem, phi, None)   # memory ∝ T; FG2U's memory does not grow with T
    same = make("fg2u", num_directions=8, chunk_size=4)   # by name, for configs and command lines

Estimators (frozen dataclasses, ``est(problem, phi, key) -> (grad like phi, fg2u.Aux(outer_loss))``):
[`FG2U`][fg2u.jax.FG2U], [`FG2U_ZO`][fg2u.jax.FG2U_ZO], [`FGU`][fg2u.jax.FGU], [`RGU`][fg2u.jax.RGU],
[`TRGU`][fg2u.jax.TRGU], [`RGUCheckpointed`][fg2u.jax.RGUCheckpointed], [`RGURecursive`][fg2u.jax.RGURecursive],
[`Implicit`][fg2u.jax.Implicit] (with the solves [`neumann`][fg2u.jax.neumann],
[`conjugate_gradient`][fg2u.jax.conjugate_gradient], [`identity`][fg2u.jax.identity], and the aliases ``Neumann``,
``ConjugateGradient``, ``HessianFree``), [`Hybrid`][fg2u.jax.Hybrid], and the combinators
[`TwoPhase`][fg2u.jax.TwoPhase], [`Scaled`][fg2u.jax.Scaled], [`ControlVariate`][fg2u.jax.ControlVariate],
[`RunningControlVariate`][fg2u.jax.RunningControlVariate] — each the JAX kernel (final) of the
settings class of the same name in [`fg2u.estimators`][fg2u.estimators]; [`make`][fg2u.jax.make] builds them by name.
Helpers: [`unroll`][fg2u.jax.unroll.unroll], [`meta_objective`][fg2u.jax.meta_objective],
[`sample_directions`][fg2u.jax.sample_directions], [`optax_transition`][fg2u.jax.optax_transition],
[`InnerState`][fg2u.jax.InnerState], [`JaxOps`][fg2u.jax.JaxOps].

Importing this module registers [`fg2u.UnrolledProblem`][fg2u.problem.UnrolledProblem] and
[`fg2u.BlackBoxProblem`][fg2u.problem.BlackBoxProblem] as pytrees: ``init``/``step``/``outer_loss``/``objective`` and
``num_steps`` are static, ``inner_batches``, ``outer_batch`` and ``data`` are children, so new batches do not recompile
a jitted estimator.
"""

from __future__ import annotations

from typing import Any

import jax

from fg2u.estimators import Backend, conjugate_gradient, identity, neumann
from fg2u.problem import BlackBoxProblem, UnrolledProblem

from ._finite import check_finite_inputs
from .combinators import ControlVariate, RunningControlVariate, Scaled, TwoPhase
from .directions import JaxOps, sample_directions
from .forward import FG2U, FG2U_ZO, FGU
from .hybrid import Hybrid
from .implicit import ConjugateGradient, HessianFree, Implicit, Neumann
from .inner import InnerState, optax_transition
from .parallel import DirectionParallel, direction_mesh
from .quality import gradient_quality
from .reverse import RGU, TRGU, RGUCheckpointed, RGURecursive
from .unroll import meta_objective, unroll

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
    "direction_mesh",
    "unroll",
    "meta_objective",
    "sample_directions",
    "optax_transition",
    "InnerState",
    "JaxOps",
    "gradient_quality",
]


BACKEND = Backend.collect("jax", globals())
"""Every JAX estimator by its registry name (see [`fg2u.estimators`][fg2u.estimators])."""


def make(name: str, **settings: Any) -> Any:
    """The JAX estimator registered as ``name`` with ``settings``: ``make("fg2u", num_directions=8)``.

    Names: ``fg2u.estimators.names()`` (``"fg2u"``, ``"rgu"``, ``"trgu"``, …; display names such as ``"FG2U"``
    work too). Nested estimators of combinators may be names or ``{"name": ..., **settings}`` mappings.
    """
    return BACKEND.make(name, **settings)


def _build(cls: type, values: dict[str, Any]) -> Any:
    # Bypasses __post_init__: JAX unflattens with placeholder leaves (None, object()) during tracing.
    obj: Any = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    return obj


def _register() -> None:
    kw = jax.tree_util.GetAttrKey
    unrolled_static = ("init", "step", "outer_loss", "num_steps")
    unrolled_data = ("inner_batches", "outer_batch")

    def flatten_unrolled(p: UnrolledProblem) -> tuple:
        return ([(kw(n), getattr(p, n)) for n in unrolled_data], tuple(getattr(p, n) for n in unrolled_static))

    def unflatten_unrolled(static: tuple, children: Any) -> UnrolledProblem:
        return _build(UnrolledProblem, {**dict(zip(unrolled_static, static)), **dict(zip(unrolled_data, children))})

    def flatten_blackbox(p: BlackBoxProblem) -> tuple:
        return ([(kw("data"), p.data)], (p.objective,))

    def unflatten_blackbox(static: tuple, children: Any) -> BlackBoxProblem:
        return _build(BlackBoxProblem, {"objective": static[0], "data": list(children)[0]})

    for cls, flatten, unflatten in (
        (UnrolledProblem, flatten_unrolled, unflatten_unrolled),
        (BlackBoxProblem, flatten_blackbox, unflatten_blackbox),
    ):
        try:
            jax.tree_util.register_pytree_with_keys(cls, flatten, unflatten)  # type: ignore[arg-type]
        except ValueError:  # already registered (module re-imported)
            pass


_register()
