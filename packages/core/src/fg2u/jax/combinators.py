"""The core's combinators ([`fg2u.estimators.combinators`][fg2u.estimators.combinators]) bound to JAX arithmetic
(`fg2u.jax._ops`; counters are ``int32`` arrays, so the state can be traced under ``jax.jit``)."""

from __future__ import annotations

from typing import final

from fg2u.estimators import combinators

from ._ops import TREE_OPS

__all__ = ["TwoPhase", "Scaled", "ControlVariate", "RunningControlVariate"]


@final
class TwoPhase(combinators.TwoPhase):
    """[`fg2u.estimators.TwoPhase`][fg2u.estimators.TwoPhase] on JAX (the step counter an ``int32`` array: ``estimate``
    can be jitted).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> phi = jnp.array([1.0, -2.0])
      >>> est = fj.TwoPhase(first=fj.HessianFree(), second=fj.RGU(), switch_step=1)
      >>> state = est.init(phi)
      >>> step = jax.jit(est.estimate)
      >>> for _ in range(2):
      ...     grad, aux, state = step(problem, phi, None, state)
      ...     print(grad.round(3), int(state.meta_step))
      [ 0.999... -1.998...] 1
      [ 1.996... -3.992...] 2
    """

    ops = TREE_OPS


@final
class Scaled(combinators.Scaled):
    """[`fg2u.estimators.Scaled`][fg2u.estimators.Scaled] on JAX.

    Examples:
      >>> import jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> est = fj.Scaled(fj.RGU(), scale=0.5)
      >>> est(problem, jnp.array([1.0, -2.0]), None)[0].round(3)  # half of RGU's 2(1 − 2⁻¹⁰)² φ
      Array([ 0.998..., -1.996...], dtype=float32)
      >>> est.settings()
      {'estimator': 'RGU', 'check_finite': False, 'scale': 0.5}
    """

    ops = TREE_OPS


@final
class ControlVariate(combinators.ControlVariate):
    """[`fg2u.estimators.ControlVariate`][fg2u.estimators.ControlVariate] on JAX.

    Examples:
      With the exact gradient as surrogate (scale 1) the residual, hence the variance, is zero:

      >>> import jax, jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> est = fj.ControlVariate(fj.FG2U(num_directions=1), surrogate=fj.RGU(), scale=1.0)
      >>> est(problem, jnp.array([1.0, -2.0]), jax.random.key(0))[0].round(3)
      Array([ 1.996..., -3.992...], dtype=float32)
    """

    ops = TREE_OPS


@final
class RunningControlVariate(combinators.RunningControlVariate):
    """[`fg2u.estimators.RunningControlVariate`][fg2u.estimators.RunningControlVariate] on JAX (its state can be carried
    through ``jax.jit``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> phi = jnp.array([1.0, -2.0])
      >>> est = fj.RunningControlVariate(fj.FG2U(num_directions=2, distribution="orthogonal"), decay=0.5)
      >>> state = est.init(phi)
      >>> grad, aux, state = est.estimate(problem, phi, jax.random.key(0), state)
      >>> grad.round(3)  # b = N orthogonal directions: exact, whatever the control variate
      Array([ 1.996..., -3.992...], dtype=float32)
      >>> state.mean.round(3), int(state.count)  # m₁ = β·0 + (1 − β)ĝ
      (Array([ 0.998..., -1.996...], dtype=float32), 1)
    """

    ops = TREE_OPS
