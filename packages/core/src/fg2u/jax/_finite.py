"""The opt-in NaN/inf check of every estimator (``check_finite=True``).

* Eagerly (concrete values) it raises :class:`FloatingPointError` naming the estimator and the bad leaves.
* Under ``jax.jit`` the values are not known at trace time, so the check is a ``jax.debug.callback`` that
  raises the same ``FloatingPointError`` on the host when the compiled function runs; JAX surfaces it as a
  ``jax.errors.JaxRuntimeError`` (a ``RuntimeError``) whose message contains
  ``"FloatingPointError: <estimator>: ..."`` — raised at the latest on ``block_until_ready()``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["check_finite"]


def _message(who: str, bad: list[str]) -> str:
    return (
        f"{who}: the meta-gradient estimate or the outer loss contains NaN or inf ({', '.join(bad)}); "
        "check the inner step size, the unroll depth and the outer loss"
    )


def check_finite(who: str, grad: Any, loss: Any) -> None:
    """Raises ``FloatingPointError`` (see the module docstring for jit) when ``grad`` or ``loss`` is not finite."""
    named = [(f"grad{jax.tree_util.keystr(p)}", x) for p, x in jax.tree_util.tree_flatten_with_path(grad)[0]]
    named.append(("outer_loss", loss))
    flags = jnp.stack([jnp.all(jnp.isfinite(x)) for _, x in named])
    names = [n for n, _ in named]
    try:
        concrete = [bool(f) for f in flags]
    except jax.errors.ConcretizationTypeError:
        jax.debug.callback(lambda fl: _raise(who, names, fl), flags)
        return
    _raise(who, names, concrete)


def _raise(who: str, names: list[str], flags: Any) -> None:
    bad = [n for n, ok in zip(names, list(flags)) if not bool(ok)]
    if bad:
        raise FloatingPointError(_message(who, bad))
