"""The opt-in NaN/inf check of every estimator (``check_finite=True``) and its diagnosis.

[`check_finite`][fg2u.jax._finite.check_finite] looks at the estimate and the outer loss and, when ``phi`` / ``problem``
are given,
at the inputs too, so the error names the cause:

* NaN/inf already in φ or in the data (``inner_batches``, ``outer_batch``, a black box's ``data``):
  "the inputs contain NaN or inf (phi['w'], inner_batches[0])" — fix the inputs;
* finite inputs: the non-finite values arise in the computation — the inner step size, the unroll
  depth, the outer loss, or an Adam inner optimiser whose ``√v`` is differentiated at ``v = 0``
  (a parameter whose gradient is exactly zero; use ``optax.adam(lr, eps_root=1e-8)``).

[`check_finite_inputs`][fg2u.jax.check_finite_inputs] checks φ and the data before the (possibly long) computation:
eagerly when the values are concrete, and is a no-op under tracing.

Eagerly (concrete values) the check raises ``FloatingPointError``. Under ``jax.jit`` values are unknown at
trace time, so the check is a ``jax.debug.callback`` that raises the same error on the host when the
compiled function runs. jaxlib wraps it: the caller gets one ``jax.errors.JaxRuntimeError`` (a
``RuntimeError``, at the latest on ``block_until_ready()``) whose text is fixed by jaxlib —
``"INTERNAL: CpuCallback error calling callback: Traceback …"`` — and ends with
``"FloatingPointError: <estimator>: ..."``; no Python code can change that prefix (``checkify`` would, but
only for a function the caller wraps in ``checkify.checkify``). So the useful line is printed first instead:
JAX logs a failing callback's exception (with its traceback) before re-raising it, and fg2u rewrites that log
record of its own error into the one line ``FloatingPointError: <estimator>: ...`` without the traceback,
which appears on stderr before the ``JaxRuntimeError`` (so the error is still reported once in full).
"""

from __future__ import annotations

import logging
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["check_finite", "check_finite_inputs", "nonfinite_inputs"]

PyTree = Any

_COMPUTATION_HINT = (
    "check the inner step size, the unroll depth and the outer loss; with an Adam inner optimiser a "
    "parameter whose gradient is exactly zero makes the derivative of √v infinite: use "
    "optax.adam(lr, eps_root=1e-8)"
)


def _error(message: str) -> FloatingPointError:
    """A ``FloatingPointError`` marked as ours, so JAX's log of it under jit becomes its one useful line."""
    err = FloatingPointError(message)
    err._fg2u_nonfinite = True  # type: ignore[attr-defined]
    return err


class _OneLineLog(logging.Filter):
    """JAX logs a callback's exception with its traceback before re-raising it inside a ``JaxRuntimeError``
    whose first line jaxlib fixes; for fg2u's own error the record becomes the one useful line (printed
    first), and the traceback is left to the ``JaxRuntimeError``."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if getattr(exc, "_fg2u_nonfinite", False):
            record.msg, record.args = f"{type(exc).__name__}: {exc}", ()
            record.exc_info, record.exc_text = None, None
        return True


for _name in ("jax._src.debugging", "jax._src.callback"):
    _logger = logging.getLogger(_name)
    if not any(type(f).__name__ == "_OneLineLog" for f in _logger.filters):
        _logger.addFilter(_OneLineLog())


def _named_leaves(prefix: str, tree: PyTree) -> list[tuple[str, Any]]:
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = jnp.result_type(leaf) if hasattr(leaf, "dtype") or isinstance(leaf, (int, float, complex)) else None
        if dtype is not None and jnp.issubdtype(dtype, jnp.inexact):
            out.append((f"{prefix}{jax.tree_util.keystr(path)}", leaf))
    return out


def _input_leaves(phi: PyTree, problem: Any) -> list[tuple[str, Any]]:
    named = _named_leaves("phi", phi) if phi is not None else []
    for field in ("inner_batches", "outer_batch", "data"):
        value = getattr(problem, field, None) if problem is not None else None
        if value is not None:
            named += _named_leaves(field, value)
    return named


def _flags(named: list[tuple[str, Any]]) -> Any:
    return jnp.stack([jnp.all(jnp.isfinite(x)) for _, x in named]) if named else jnp.ones((0,), bool)


def _concrete(flags: Any) -> list[bool] | None:
    try:
        return [bool(f) for f in flags]
    except jax.errors.ConcretizationTypeError:
        return None


def nonfinite_inputs(phi: PyTree, problem: Any = None) -> list[str]:
    """Names of the leaves of φ and of the problem's data that contain NaN/inf (concrete values only)."""
    named = _input_leaves(phi, problem)
    flags = _concrete(_flags(named)) or [True] * len(named)
    return [n for (n, _), ok in zip(named, flags) if not ok]


def _input_message(who: str, bad: list[str]) -> str:
    return (
        f"{who}: the inputs contain NaN or inf ({', '.join(bad)}); the meta-gradient cannot be finite — "
        "fix φ or the data before calling the estimator"
    )


def check_finite_inputs(who: str, phi: PyTree, problem: Any = None) -> None:
    """Raises ``FloatingPointError`` before any computation when φ or the problem's data hold NaN/inf.

    Only concrete (eager) values are checked; under ``jax.jit`` this is a no-op and
    [`check_finite`][fg2u.jax._finite.check_finite] (called with ``phi`` and ``problem``) names the bad inputs after the
    computation instead.
    """
    named = _input_leaves(phi, problem)
    flags = _concrete(_flags(named))
    if flags is None:
        return
    bad = [n for (n, _), ok in zip(named, flags) if not ok]
    if bad:
        raise _error(_input_message(who, bad))


def check_finite(who: str, grad: PyTree, loss: Any, *, phi: PyTree = None, problem: Any = None) -> None:
    """Raises ``FloatingPointError`` (see the module docstring for jit) when ``grad`` or ``loss`` is not
    finite; with ``phi`` / ``problem`` given, the message names NaN/inf inputs as the cause."""
    named = [(f"grad{jax.tree_util.keystr(p)}", x) for p, x in jax.tree_util.tree_flatten_with_path(grad)[0]]
    named.append(("outer_loss", loss))
    num_outputs = len(named)
    named += _input_leaves(phi, problem)
    flags = _flags(named)
    names = [n for n, _ in named]
    concrete = _concrete(flags)
    if concrete is None:
        jax.debug.callback(lambda fl: _raise(who, names, num_outputs, fl), flags)
        return
    _raise(who, names, num_outputs, concrete)


def _raise(who: str, names: list[str], num_outputs: int, flags: Any) -> None:
    flags = [bool(f) for f in list(flags)]
    bad_out = [n for n, ok in zip(names[:num_outputs], flags[:num_outputs]) if not ok]
    bad_in = [n for n, ok in zip(names[num_outputs:], flags[num_outputs:]) if not ok]
    if not bad_out and not bad_in:
        return
    if not bad_out:
        raise _error(_input_message(who, bad_in))
    head = f"{who}: the meta-gradient estimate or the outer loss contains NaN or inf ({', '.join(bad_out)})"
    if bad_in:
        raise _error(f"{head}; cause: the inputs contain NaN or inf ({', '.join(bad_in)}) — fix φ or the data")
    checked = " (φ and the data are finite)" if len(names) > num_outputs else ""
    raise _error(f"{head}{checked}; {_COMPUTATION_HINT}")
