"""The friction a new user hit (issue 14, item 6), each mended and pinned here.

* Adam's zero-gradient NaN trap (both backends), with an exact oracle: a parameter that multiplies an
  always-zero feature never moves and never influences anything, so the meta-gradient must equal the one
  of the same problem without that parameter.
* NaN diagnosis: the check names NaN/inf in φ and in the data, checks inputs eagerly, and under jit its
  message is logged as one line before jaxlib's wrapped error.
* A NumPy black box inside a JAX objective gets the jax.pure_callback recipe.
* φ as a Python list is rejected with the same TypeError by both backends.
"""

from __future__ import annotations

import logging
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import fg2u
import fg2u.jax as fj
import fg2u.torch as ft
from fg2u.jax._finite import check_finite, check_finite_inputs
from fg2u.jax.inner import UnsafeOptimizerWarning, zero_gradient_derivative_is_finite
from fg2u.torch._pytree import check_finite_inputs as torch_check_finite_inputs
from fg2u.torch._pytree import check_finite_result

T = 6
RNG = np.random.default_rng(0)
X = RNG.normal(size=(T, 8, 3)).astype(np.float32)
Y = RNG.normal(size=(T, 8)).astype(np.float32)
XV, YV = RNG.normal(size=(16, 3)).astype(np.float32), RNG.normal(size=(16,)).astype(np.float32)


def _with_dead_feature(x: np.ndarray) -> np.ndarray:
    """Appends a feature that is exactly 0 everywhere (an always-blank pixel)."""
    return np.concatenate([x, np.zeros(x.shape[:-1] + (1,), x.dtype)], axis=-1)


# ---------------------------------------------------------------- Adam's zero-gradient trap: JAX
def _jax_problem(optimizer, dead: bool):
    d = 4 if dead else 3
    xs = jnp.asarray(_with_dead_feature(X) if dead else X)
    xv = jnp.asarray(_with_dead_feature(XV) if dead else XV)

    def inner_loss(w, phi, batch):  # φ: per-feature L2 strengths (log scale)
        x, y = batch
        return jnp.mean((x @ w - y) ** 2) + jnp.sum(jnp.exp(phi) * w**2)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeOptimizerWarning)
        init, step = fj.optax_transition(inner_loss, optimizer, jnp.full((d,), 0.1).at[-1].set(0.0 if dead else 0.1))
    outer = lambda s, phi, b: jnp.mean((b[0] @ s.params - b[1]) ** 2)  # noqa: E731
    problem = fg2u.UnrolledProblem(
        init, step, outer, T, inner_batches=(xs, jnp.asarray(Y)), outer_batch=(xv, jnp.asarray(YV))
    )
    return problem, jnp.full((d,), -2.0)


@pytest.mark.slow
def test_jax_unsafe_adam_is_detected_and_the_fix_works():
    assert zero_gradient_derivative_is_finite(optax.adam(0.05)) is False
    assert zero_gradient_derivative_is_finite(optax.adam(0.05, eps_root=1e-8)) is True
    assert zero_gradient_derivative_is_finite(optax.sgd(0.1, momentum=0.9)) is True
    loss = lambda w, phi, b: jnp.sum(w**2)  # noqa: E731
    with pytest.warns(UnsafeOptimizerWarning, match=r"eps_root=1e-8"):
        fj.optax_transition(loss, optax.adam(0.05), jnp.zeros(2))
    with pytest.raises(ValueError, match=r"optax.adam\(lr, eps_root=1e-8\)"):
        fj.optax_transition(loss, optax.adam(0.05), jnp.zeros(2), on_unsafe="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fj.optax_transition(loss, optax.adam(0.05, eps_root=1e-8), jnp.zeros(2))

    # the trap is real: plain optax.adam gives a NaN meta-gradient once one gradient is exactly zero ...
    bad, phi = _jax_problem(optax.adam(0.05), dead=True)
    g_bad, _ = jax.jit(fj.RGU())(bad, phi, None)
    assert not np.all(np.isfinite(np.asarray(g_bad)))
    # ... and eps_root fixes it exactly: the dead parameter's meta-gradient is 0 and the others equal the
    # meta-gradient of the problem without the dead feature (Adam is per coordinate).
    safe, phi = _jax_problem(optax.adam(0.05, eps_root=1e-8), dead=True)
    ref, phi_ref = _jax_problem(optax.adam(0.05, eps_root=1e-8), dead=False)
    g, aux = jax.jit(fj.RGU())(safe, phi, None)
    g_ref, aux_ref = jax.jit(fj.RGU())(ref, phi_ref, None)
    assert float(g[-1]) == 0.0
    np.testing.assert_allclose(np.asarray(g[:-1]), np.asarray(g_ref), rtol=1e-5, atol=1e-7)
    g_fg, _ = jax.jit(fj.FG2U(num_directions=4))(safe, phi, jax.random.PRNGKey(0))
    assert np.all(np.isfinite(np.asarray(g_fg)))


# ---------------------------------------------------------------- Adam's zero-gradient trap: torch
def _torch_problem(dead: bool, **adam_kwargs):
    d = 4 if dead else 3
    xs = torch.as_tensor(_with_dead_feature(X) if dead else X, dtype=torch.float64)
    xv = torch.as_tensor(_with_dead_feature(XV) if dead else XV, dtype=torch.float64)
    ys, yv = torch.as_tensor(Y, dtype=torch.float64), torch.as_tensor(YV, dtype=torch.float64)

    def inner_loss(w, phi, batch):
        x, y = batch
        return torch.mean((x @ w - y) ** 2) + torch.sum(torch.exp(phi) * w**2)

    w0 = torch.full((d,), 0.1, dtype=torch.float64)
    if dead:
        w0[-1] = 0.0
    init, step = ft.optim_transition(inner_loss, ft.optim.adam(0.05, **adam_kwargs), w0)
    outer = lambda s, phi, b: torch.mean((b[0] @ s.params - b[1]) ** 2)  # noqa: E731
    problem = fg2u.UnrolledProblem(init, step, outer, T, inner_batches=(xs, ys), outer_batch=(xv, yv))
    return problem, torch.full((d,), -2.0, dtype=torch.float64)


def test_torch_adam_is_safe_at_a_zero_gradient():
    problem, phi = _torch_problem(dead=True)
    ref, phi_ref = _torch_problem(dead=False)
    g, _ = ft.RGU()(problem, phi, None)
    g_ref, _ = ft.RGU()(ref, phi_ref, None)
    assert torch.isfinite(g).all() and float(g[-1]) == 0.0
    torch.testing.assert_close(g[:-1], g_ref, rtol=1e-10, atol=1e-12)
    g_fg, _ = ft.FG2U(num_directions=4)(problem, phi, 0)  # forward mode through the safe square root
    assert torch.isfinite(g_fg).all()
    # eps_root (optax's form) is accepted and safe too
    g_root, _ = ft.RGU()(_torch_problem(dead=True, eps_root=1e-8)[0], phi, None)
    assert torch.isfinite(g_root).all()
    with pytest.raises(ValueError, match="eps_root"):
        ft.optim.adam(0.1, eps_root=-1.0)


# ---------------------------------------------------------------- NaN diagnosis
def _nan_problem():
    return fg2u.UnrolledProblem(
        init=lambda phi: jnp.zeros(2),
        step=lambda s, phi, b: s - 0.1 * (s - phi * b),
        outer_loss=lambda s, phi, b: jnp.sum((s - b) ** 2),
        num_steps=3,
        inner_batches=jnp.ones((3, 2)).at[1, 0].set(jnp.nan),
        outer_batch=jnp.ones(2),
    )


def test_check_finite_names_nan_inputs_eagerly():
    phi = {"w": jnp.array([1.0, jnp.inf])}
    with pytest.raises(FloatingPointError, match=r"FG2U: the inputs contain NaN or inf \(phi\['w'\]\)"):
        check_finite_inputs("FG2U", phi)
    with pytest.raises(FloatingPointError, match=r"inner_batches"):
        check_finite_inputs("RGU", jnp.ones(2), _nan_problem())
    check_finite_inputs(
        "RGU", jnp.ones(2), fg2u.UnrolledProblem(lambda p: p, lambda s, p, b: s, lambda s, p, b: jnp.sum(s), 1)
    )
    # after the computation: the estimate is NaN and the cause is named
    grad, aux = fj.RGU()(_nan_problem(), jnp.ones(2), None)
    with pytest.raises(
        FloatingPointError, match=r"contains NaN or inf \(grad.*cause: the inputs contain NaN or inf \(inner_batches\)"
    ):
        check_finite("RGU", grad, aux.outer_loss, phi=jnp.ones(2), problem=_nan_problem())
    # finite inputs: the message points at the computation (and at Adam's eps_root)
    with pytest.raises(FloatingPointError, match=r"\(φ and the data are finite\).*eps_root=1e-8"):
        check_finite("RGU", jnp.array([jnp.nan]), jnp.array(1.0), phi=jnp.ones(1))


def test_check_finite_under_jit_logs_the_useful_line_first(caplog):
    """jaxlib fixes the first line of the JaxRuntimeError ("INTERNAL: CpuCallback error calling callback:
    Traceback …"), so the message arrives as one log line (no traceback) before the exception is raised."""

    @jax.jit
    def run(phi, problem):
        grad, aux = fj.RGU()(problem, phi, None)
        check_finite("RGU", grad, aux.outer_loss, phi=phi, problem=problem)
        check_finite_inputs("RGU", phi, problem)  # a no-op under tracing
        return grad

    useful = r"FloatingPointError: RGU: .*cause: the inputs contain NaN or inf \(inner_batches\)"
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(RuntimeError, match=useful) as info:
            jax.block_until_ready(run(jnp.ones(2), _nan_problem()))
    records = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("jax._src.debugging")]
    assert len(records) == 1, [r.getMessage() for r in records]
    (record,) = records
    assert re.match(useful, record.getMessage()) and "\n" not in record.getMessage()
    assert record.exc_info is None and record.levelno == logging.ERROR
    assert str(info.value).rstrip().endswith(record.getMessage().split(": ", 1)[1])  # the same text, once more


def test_torch_check_finite_names_nan_inputs():
    phi = {"w": torch.tensor([1.0, float("nan")])}
    with pytest.raises(FloatingPointError, match=r"FG2U: the inputs contain NaN or inf \(phi\['w'\]\)"):
        torch_check_finite_inputs("FG2U", phi)
    problem = fg2u.UnrolledProblem(
        lambda p: p, lambda s, p, b: s, lambda s, p, b: s.sum(), 1, outer_batch=torch.tensor([float("inf")])
    )
    with pytest.raises(FloatingPointError, match=r"cause: the inputs contain NaN or inf \(outer_batch\)"):
        check_finite_result("RGU", torch.tensor([float("nan")]), torch.tensor(1.0), phi=torch.ones(1), problem=problem)
    check_finite_result("RGU", torch.ones(1), torch.tensor(1.0), phi=phi, problem=problem)  # finite result: no error


# ---------------------------------------------------------------- a NumPy black box in JAX
def test_numpy_black_box_gets_the_pure_callback_recipe():
    problem = fg2u.BlackBoxProblem(lambda phi, data: float(np.sum(np.asarray(phi) ** 2)))
    for call in (
        lambda: fj.FG2U_ZO(2)(problem, jnp.ones(3), jax.random.PRNGKey(0)),
        lambda: jax.jit(fj.FG2U_ZO(2))(problem, jnp.ones(3), jax.random.PRNGKey(0)),
    ):
        with pytest.raises(TypeError, match=r"jax.pure_callback\(host_loss"):
            call()

    def host(phi):
        return np.float32(np.sum(np.asarray(phi) ** 2))

    def objective(phi, data):  # the recipe from the error message works
        return jax.pure_callback(host, jax.ShapeDtypeStruct((), jnp.float32), phi, vmap_method="sequential")

    g, aux = jax.jit(fj.FG2U_ZO(64, eps=1e-3, scheme="central"))(
        fg2u.BlackBoxProblem(objective), jnp.ones(3), jax.random.PRNGKey(0)
    )
    assert float(aux.outer_loss) == pytest.approx(3.0, rel=1e-4)
    cos = float(g @ jnp.full(3, 2.0) / (jnp.linalg.norm(g) * jnp.linalg.norm(jnp.full(3, 2.0))))
    assert cos > 0.5  # 64 Rademacher directions in N = 3: E cos ≈ 1 − O(N/b)


# ---------------------------------------------------------------- φ validation parity
def test_phi_as_a_python_list_is_rejected_by_both_backends():
    jprob = fg2u.UnrolledProblem(lambda p: jnp.zeros(2), lambda s, p, b: s, lambda s, p, b: jnp.sum(s), 1)
    with pytest.raises(TypeError, match=r"phi\[0\] must be a floating-point array, got float.*Python list"):
        fj.RGU()(jprob, [1.0, 2.0], None)
    tprob = fg2u.UnrolledProblem(lambda p: torch.zeros(2), lambda s, p, b: s, lambda s, p, b: s.sum(), 1)
    with pytest.raises(TypeError, match=r"phi\[0\] must be a floating-point torch.Tensor, got float.*Python list"):
        ft.RGU()(tprob, [1.0, 2.0], None)
