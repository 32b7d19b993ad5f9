"""fg2u.harness (backend-neutral) and the backends' meta steps (fg2u.jax.harness, fg2u.torch.harness).

Oracle for the meta steps: plain SGD on φ with the mean of the accumulated exact gradients, computed by hand
from the closed-form quadratic meta-gradient g(φ) = Mᵀ Cᵀ (C M φ − y), M = (I − (I − ηA)^T) A⁻¹ B.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from fg2u.harness import add_common_arguments, estimator_record, run_meta_loop

T, ETA = 12, 0.2
_RNG = np.random.default_rng(5)
_A0 = _RNG.normal(size=(4, 4))
A = _A0 @ _A0.T / 4 + 0.5 * np.eye(4)
B, C, Y, PHI = _RNG.normal(size=(4, 3)), _RNG.normal(size=(2, 4)), _RNG.normal(size=2), _RNG.normal(size=3)


def _grad(phi, y):
    m = (np.eye(4) - np.linalg.matrix_power(np.eye(4) - ETA * A, T)) @ np.linalg.solve(A, B)
    return m.T @ C.T @ (C @ m @ phi - y)


def test_common_arguments_have_the_same_defaults_everywhere():
    p = argparse.ArgumentParser()
    add_common_arguments(p, configs=("smoke", "cpu"), default_out="results/x")
    args = p.parse_args([])
    assert (args.config, args.seeds, args.out, args.no_progress) == ("cpu", [0], "results/x", False)
    assert "fg2u" in args.estimators and "rgu" in args.estimators
    with pytest.raises(SystemExit):
        p.parse_args(["--estimators", "fg3u"])
    with pytest.raises(ValueError, match="default_config"):
        add_common_arguments(argparse.ArgumentParser(), configs=("smoke",), default_out="x")


def test_run_meta_loop_logs_times_and_stops_on_nan():
    result = run_meta_loop(lambda c, i: (c + 1, float(10 - i)), 0, 25, progress_bar=False, log_every=10)
    assert result.carry == 25
    assert result.losses == [(9, 1.0), (19, -9.0), (24, -14.0)]
    assert result.seconds >= result.first_step_s >= 0 and result.step_s >= 0
    with pytest.raises(FloatingPointError, match="meta step 3"):
        run_meta_loop(lambda c, i: (c, float("nan") if i == 3 else 1.0), 0, 5, progress_bar=False, log_every=1)
    assert result.steps_run == 25 and not result.stopped_early


def test_run_meta_loop_stops_when_asked_and_logs_the_last_step():
    seen = []
    result = run_meta_loop(
        lambda c, i: (c + 1, float(100 - c)),
        0,
        50,
        progress_bar=False,
        log_every=10,
        stop_when=lambda i, c: seen.append((i, c)) or c >= 13,  # called after every step with (i, carry)
        postfix=lambda c: {"carry": c},
    )
    assert seen == [(i, i + 1) for i in range(13)]
    assert result.carry == 13 and result.steps_run == 13 and result.num_steps == 50 and result.stopped_early
    assert result.losses == [(9, 91.0), (12, 88.0)]  # the step that stopped the loop is logged
    with pytest.raises(ValueError, match="log_every"):
        run_meta_loop(lambda c, i: (c, 0.0), 0, 3, log_every=0)


def test_estimator_record_uses_the_objects_own_settings():
    fj = pytest.importorskip("fg2u.jax")
    rec = estimator_record(fj.Scaled(fj.HessianFree(), 2.0))
    assert rec == {
        "estimator": "HessianFree",
        "estimator_settings": {"estimator": "HessianFree", "alpha": 1.0, "check_finite": False, "scale": 2.0},
    }


def test_jax_meta_step_accumulates_and_counts_meta_steps_once():
    fj = pytest.importorskip("fg2u.jax")
    import jax
    import jax.numpy as jnp
    import optax

    import fg2u
    from fg2u.jax.harness import make_meta_step

    with jax.enable_x64(True):  # float64 inside this test only
        a, b, c = (jnp.asarray(x) for x in (A, B, C))

        def make_problem(y):
            return fg2u.UnrolledProblem(
                init=lambda p: jnp.zeros(4, p.dtype),
                step=lambda th, p, _: th - ETA * (a @ th - b @ p),
                outer_loss=lambda th, p, yy: 0.5 * jnp.sum((c @ th - yy) ** 2),
                num_steps=T,
                outer_batch=y,
            )

        ys = np.stack([Y, -Y, 2 * Y])  # three accumulated problems (different outer targets)
        est = fj.TwoPhase(fj.RGU(), fj.Scaled(fj.RGU(), 0.0), switch_step=2)  # exact gradient for 2 steps, then 0
        lr = 0.05
        step = make_meta_step(est, make_problem, optax.sgd(lr), grad_accumulation=3, project=lambda p: p - 0.0)
        phi = jnp.asarray(PHI)
        state, opt_state, want = est.init(phi), optax.sgd(lr).init(phi), PHI.copy()
        for k in range(3):
            phi, opt_state, state, loss = step(phi, opt_state, state, jax.random.PRNGKey(k), jnp.asarray(ys))
            if k < 2:
                want = want - lr * np.mean([_grad(want, y) for y in ys], axis=0)
            np.testing.assert_allclose(np.asarray(phi), want, rtol=1e-9)
            assert int(state[0]) == k + 1  # one count per meta step, not per accumulated estimate


def _torch_problem(y):
    """The quadratic problem in torch with outer target ``y`` (a tensor)."""
    import torch

    import fg2u

    a, b, c = (torch.as_tensor(x) for x in (A, B, C))
    return fg2u.UnrolledProblem(
        init=lambda p: torch.zeros(4, dtype=p.dtype),
        step=lambda th, p, _: th - ETA * (a @ th - b @ p),
        outer_loss=lambda th, p, yy: 0.5 * torch.sum((c @ th - yy) ** 2),
        num_steps=T,
        outer_batch=y,
    )


def test_torch_meta_step_accumulates_and_merges_running_state():
    ft = pytest.importorskip("fg2u.torch")
    import torch

    from fg2u.torch.harness import make_meta_step, merge_states

    phi = torch.tensor(PHI, requires_grad=True)
    lr = 0.05
    opt = torch.optim.SGD([phi], lr=lr)
    est = ft.RGU()
    step = make_meta_step(est, _torch_problem, opt, phi)
    want, state = PHI.copy(), est.init(phi)
    ys = [torch.as_tensor(Y), torch.as_tensor(-2 * Y)]
    for k in range(2):
        state, loss = step(state, [k, k + 10], ys)
        want = want - lr * np.mean([_grad(want, y.numpy()) for y in ys], axis=0)
        np.testing.assert_allclose(phi.detach().numpy(), want, rtol=1e-9)
    merged = merge_states([(torch.tensor([1.0, 3.0]), 4), (torch.tensor([3.0, 5.0]), 4)])
    assert torch.equal(merged[0], torch.tensor([2.0, 4.0])) and merged[1] == 4


def test_torch_meta_step_clips_the_mean_estimate_to_max_grad_norm():
    ft = pytest.importorskip("fg2u.torch")
    import torch

    from fg2u.torch.harness import make_meta_step

    ys = [torch.as_tensor(Y), torch.as_tensor(-2 * Y)]
    exact = np.mean([_grad(PHI, y.numpy()) for y in ys], axis=0)
    norm = float(np.linalg.norm(exact))
    for limit, scale in ((0.5 * norm, 0.5), (2.0 * norm, 1.0)):  # clipped to the limit / left alone
        phi = torch.tensor(PHI, requires_grad=True)
        opt = torch.optim.SGD([phi], lr=1.0)
        step = make_meta_step(ft.RGU(), _torch_problem, opt, phi, max_grad_norm=limit)
        step((), [0, 1], ys)
        np.testing.assert_allclose(phi.detach().numpy(), PHI - scale * exact, rtol=1e-9)
    with pytest.raises(ValueError, match="max_grad_norm"):
        make_meta_step(ft.RGU(), _torch_problem, torch.optim.SGD([phi], lr=1.0), phi, max_grad_norm=0.0)


def test_jax_compile_ahead_reports_the_scratch_memory_it_needs():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from fg2u.jax.harness import compile_ahead

    @jax.jit
    def sorted_outer(x):  # the sort needs the whole n × n outer product in a scratch buffer
        return jnp.sort(jnp.outer(x, x).ravel())[:: x.shape[0]]

    n = 256
    x = jnp.linspace(-1.0, 1.0, n, dtype=jnp.float32)
    compiled, temp, seconds = compile_ahead(sorted_outer, x)
    assert seconds > 0.0 and temp is not None
    assert temp >= n * n * 4  # at least the n² float32 being sorted (the output, n floats, is not temp)
    np.testing.assert_array_equal(np.asarray(compiled(x)), np.asarray(sorted_outer(x)))
    _, temp_small, _ = compile_ahead(sorted_outer, x[:16])
    assert temp_small < temp / 16
    with pytest.raises(TypeError):  # compiled for n = 256: another shape is refused, not recompiled
        compiled(x[:16])
    with pytest.raises(TypeError, match="jax.jit"):
        compile_ahead(lambda v: v, x)
