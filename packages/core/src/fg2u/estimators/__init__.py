"""Every meta-gradient estimator, defined once: settings, defaults, validation and docstring.

The classes here hold settings only and are abstract (instantiating one raises a ``TypeError`` naming the backend
classes); ``fg2u.jax`` and ``fg2u.torch`` subclass each of them with the numeric kernel (same names, same fields and
defaults; the kernels are final), and build them by name with ``make``::

    import fg2u.jax as fj
    est = fj.make("fg2u", num_directions=8)          # == fj.FG2U(num_directions=8)
    state = est.init(phi)
    grad, aux, state = est.estimate(problem, phi, key, state)

| name | class | computes | memory in T | bias |
|---|---|---|---|---|
| ``fg2u`` | [`FG2U`][fg2u.estimators.FG2U] | ``(1/b) Σ (∇L·v) v``, jvps through the unroll | flat | none |
| ``fg2u_zo`` | [`FG2U_ZO`][fg2u.estimators.FG2U_ZO] | finite differences of L along v | flat | O(ε) / O(ε²) |
| ``fgu`` | [`FGU`][fg2u.estimators.FGU] | exact, N jvps | flat | none |
| ``rgu`` | [`RGU`][fg2u.estimators.RGU] | exact, reverse mode | ∝ T | none |
| ``trgu`` | [`TRGU`][fg2u.estimators.TRGU] | reverse mode through the last K steps | ∝ K | truncation |
| ``rgu_checkpointed`` | [`RGUCheckpointed`][fg2u.estimators.RGUCheckpointed] | exact, √T rematerialisation | ∝ √T |
none |
| ``rgu_recursive`` | [`RGURecursive`][fg2u.estimators.RGURecursive] | exact, recursive k-ary rematerialisation | ∝
k·log_k T | none |
| ``implicit`` | [`Implicit`][fg2u.estimators.Implicit] | implicit, pluggable solve (``neumann`` /
``conjugate_gradient`` / ``identity``) | flat | fixed point, solve |
| ``neumann`` | [`Neumann`][fg2u.estimators.Neumann] (alias) | ``Implicit(solve=neumann(K, α))`` | flat | fixed point,
truncation |
| ``conjugate_gradient`` | [`ConjugateGradient`][fg2u.estimators.ConjugateGradient] (alias) |
``Implicit(solve=conjugate_gradient(K))`` | flat | fixed point, truncation |
| ``hessian_free`` | [`HessianFree`][fg2u.estimators.HessianFree] (alias) | ``Implicit(solve=identity(α))`` | flat |
fixed point, identity |
| ``hybrid`` | [`Hybrid`][fg2u.estimators.Hybrid] | reverse mode through the last K steps + FG²U through the first T − K
| ∝ K | none |
| ``two_phase`` | [`TwoPhase`][fg2u.estimators.TwoPhase] | ``first`` then ``second`` (stateful) | of the active one | of
the active one |
| ``scaled`` | [`Scaled`][fg2u.estimators.Scaled] | ``scale ·`` an estimator | of the inner one | of the inner one |
| ``control_variate`` | [`ControlVariate`][fg2u.estimators.ControlVariate] | FG²U around a surrogate | FG²U + surrogate
| none |
| ``running_control_variate`` | [`RunningControlVariate`][fg2u.estimators.RunningControlVariate] | FG²U around its
running mean (stateful) | FG²U + φ | none |

To add an estimator: one settings class here (``@register("name")``, a frozen dataclass), one kernel class per
backend (a ``typing.final`` subclass with ``__call__``, or with ``ops`` for a combinator written over
[`TreeOps`][fg2u.estimators.TreeOps]), listed in the backend's ``__init__``, and its tests. Benchmarks pick it
up by name. A preset of an existing estimator is an [`Alias`][fg2u.estimators.Alias] (``register_alias``), as the
implicit ones are.
"""

# Registration order (forward, reverse, implicit, hybrid, combinators) is the order of ``names()``.
from fg2u.estimators.base import Estimator, TreeOps, check_not_problem, describe_settings  # isort: skip
from fg2u.estimators.forward import FG2U, FG2U_ZO, FGU, RandomDirections  # isort: skip
from fg2u.estimators.reverse import RGU, TRGU, RGUCheckpointed, RGURecursive  # isort: skip
from fg2u.estimators.implicit import (  # isort: skip
    ConjugateGradient,
    ConjugateGradientSolve,
    HessianFree,
    IdentitySolve,
    Implicit,
    LinearSolve,
    Neumann,
    NeumannSolve,
    as_solve,
    conjugate_gradient,
    identity,
    neumann,
)
from fg2u.estimators.hybrid import Hybrid  # isort: skip
from fg2u.estimators.combinators import (  # isort: skip
    ControlVariate,
    RunningControlVariate,
    RunningMeanState,
    Scaled,
    TwoPhase,
    TwoPhaseState,
)
from fg2u.estimators.registry import (  # isort: skip
    Alias,
    Backend,
    estimator_field,
    get_spec,
    names,
    normalise_name,
    register,
    register_alias,
)

__all__ = [
    "Estimator",
    "TreeOps",
    "RandomDirections",
    "FG2U",
    "FG2U_ZO",
    "FGU",
    "RGU",
    "TRGU",
    "RGUCheckpointed",
    "RGURecursive",
    "Implicit",
    "LinearSolve",
    "NeumannSolve",
    "ConjugateGradientSolve",
    "IdentitySolve",
    "neumann",
    "conjugate_gradient",
    "identity",
    "as_solve",
    "Neumann",
    "ConjugateGradient",
    "HessianFree",
    "Hybrid",
    "TwoPhase",
    "TwoPhaseState",
    "Scaled",
    "ControlVariate",
    "RunningControlVariate",
    "RunningMeanState",
    "Alias",
    "Backend",
    "register",
    "register_alias",
    "names",
    "get_spec",
    "normalise_name",
    "estimator_field",
    "describe_settings",
    "check_not_problem",
]
