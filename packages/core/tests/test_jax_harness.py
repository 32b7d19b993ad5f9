"""fg2u.jax.harness: the jitted meta step (gradient accumulation, estimator state, optax), merge_states,
compile_ahead's XLA memory and the Driver the runner uses.

Oracle for the meta steps: plain SGD on φ with the mean of the accumulated exact gradients, computed by hand
from the closed-form quadratic meta-gradient g(φ) = Mᵀ Cᵀ (C M φ − y), M = (I − (I − ηA)^T) A⁻¹ B (T steps of
θ ← θ − η(Aθ − Bφ) from θ = 0). In float64 the estimator (exact RGU) and the oracle differ by rounding only:
rtol 1e-9 leaves 10⁶ ulps for T = 12 steps of a 4 × 4 system.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import fg2u  # noqa: E402
import fg2u.jax as fj  # noqa: E402
from fg2u.experiment.records import Memory  # noqa: E402
from fg2u.experiment.runner import Prepared  # noqa: E402
from fg2u.jax.harness import Driver, compile_ahead, make_meta_step, merge_states, temp_bytes  # noqa: E402

T, ETA, LR = 12, 0.2, 0.05
_RNG = np.random.default_rng(5)
_A0 = _RNG.normal(size=(4, 4))
A = _A0 @ _A0.T / 4 + 0.5 * np.eye(4)
B, C, Y, PHI = _RNG.normal(size=(4, 3)), _RNG.normal(size=(2, 4)), _RNG.normal(size=2), _RNG.normal(size=3)


def exact_grad(phi, y):
    m = (np.eye(4) - np.linalg.matrix_power(np.eye(4) - ETA * A, T)) @ np.linalg.solve(A, B)
    return m.T @ C.T @ (C @ m @ phi - y)


def make_problem(y):
    a, b, c = (jnp.asarray(x) for x in (A, B, C))
    return fg2u.UnrolledProblem(
        init=lambda p: jnp.zeros(4, p.dtype),
        step=lambda th, p, _: th - ETA * (a @ th - b @ p),
        outer_loss=lambda th, p, yy: 0.5 * jnp.sum((c @ th - yy) ** 2),
        num_steps=T,
        outer_batch=y,
    )


def test_merge_states_averages_floats_and_keeps_counters():
    states = (jnp.asarray([[1.0, 3.0], [3.0, 5.0]]), jnp.asarray([4, 4]), {"m": jnp.asarray([0.5, 1.5])})
    merged = merge_states(states)
    np.testing.assert_array_equal(np.asarray(merged[0]), [2.0, 4.0])
    assert int(merged[1]) == 4 and merged[1].dtype == jnp.int32
    assert float(merged[2]["m"]) == 1.0


def test_meta_step_accumulates_and_counts_meta_steps_once():
    with jax.enable_x64(True):  # float64 inside this test only
        ys = np.stack([Y, -Y, 2 * Y])  # three accumulated problems (different outer targets)
        est = fj.TwoPhase(fj.RGU(), fj.Scaled(fj.RGU(), 0.0), switch_step=2)  # exact gradient for 2 steps, then 0
        step = make_meta_step(est, make_problem, optax.sgd(LR), grad_accumulation=3, project=lambda p: p - 0.0)
        phi = jnp.asarray(PHI)
        state, opt_state, want = est.init(phi), optax.sgd(LR).init(phi), PHI.copy()
        for k in range(3):
            loss_want = np.mean([0.5 * np.sum((C @ _theta(want) - y) ** 2) for y in ys])
            phi, opt_state, state, loss = step(phi, opt_state, state, jax.random.PRNGKey(k), jnp.asarray(ys))
            np.testing.assert_allclose(float(loss), loss_want, rtol=1e-9)  # the mean L(φ) before the update
            if k < 2:
                want = want - LR * np.mean([exact_grad(want, y) for y in ys], axis=0)
            np.testing.assert_allclose(np.asarray(phi), want, rtol=1e-9)
            assert int(state[0]) == k + 1  # one count per meta step, not per accumulated estimate


def _theta(phi):
    m = (np.eye(4) - np.linalg.matrix_power(np.eye(4) - ETA * A, T)) @ np.linalg.solve(A, B)
    return m @ phi


def test_meta_step_projects_after_the_update_and_checks_accumulation():
    with jax.enable_x64(True):
        step = make_meta_step(fj.RGU(), make_problem, optax.sgd(LR), project=lambda p: jnp.clip(p, -0.01, 0.01))
        phi, *_ = step(jnp.asarray(PHI), optax.sgd(LR).init(jnp.asarray(PHI)), (), jax.random.PRNGKey(0), Y[None])
        want = np.clip(PHI - LR * exact_grad(PHI, Y), -0.01, 0.01)
        np.testing.assert_allclose(np.asarray(phi), want, rtol=1e-9)
    with pytest.raises(ValueError, match="grad_accumulation"):
        make_meta_step(fj.RGU(), make_problem, optax.sgd(LR), grad_accumulation=0)


def test_compile_ahead_reports_the_scratch_memory_it_needs():
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
    assert temp_small < temp / 16  # (16/256)² of the big one's n², plus small change
    with pytest.raises(TypeError):  # compiled for n = 256: another shape is refused, not recompiled
        compiled(x[:16])
    with pytest.raises(TypeError, match="jax.jit"):
        compile_ahead(lambda v: v, x)
    assert temp_bytes(object()) is None  # no memory_analysis: None, not an error


class QuadraticTrial:
    """The quadratic problem as a runner trial: A = 2 accumulated targets per step, drawn by step index."""

    num_meta_steps = 3
    grad_accumulation = 2

    def __init__(self):
        self.drawn = []

    def initial_phi(self):
        return jnp.asarray(PHI)

    def meta_optimizer(self):
        return optax.sgd(LR)

    def make_problem(self, y):
        return make_problem(y)

    def targets(self, step):
        return np.stack([Y * (step + 1), -Y])

    def next_inputs(self, step):
        self.drawn.append(step)
        return jax.random.PRNGKey(step), jnp.asarray(self.targets(step))

    def example_inputs(self):
        return jax.random.PRNGKey(0), jnp.zeros((2, 2))  # the shapes only: no draw

    def meta_step_options(self):
        return {}


def test_driver_compiles_ahead_and_runs_the_trials_meta_steps():
    with jax.enable_x64(True):
        trial = QuadraticTrial()
        prepared = Driver().prepare(fj.RGU(), trial)
        assert isinstance(prepared, Prepared) and trial.drawn == []  # compiled on example inputs: nothing drawn
        assert prepared.compile_s > 0 and prepared.block is jax.block_until_ready
        # the memory is XLA's scratch memory of this very meta step (deterministic: compiled again, the same)
        step = make_meta_step(fj.RGU(), trial.make_problem, trial.meta_optimizer(), grad_accumulation=2)
        phi = trial.initial_phi()
        _, temp, _ = compile_ahead(step, phi, optax.sgd(LR).init(phi), (), *trial.example_inputs())
        assert prepared.memory == Memory("xla_temp_bytes", temp)
        carry, want = prepared.carry, PHI.copy()
        for i in range(3):
            carry, loss = prepared.step(carry, i)
            want = want - LR * np.mean([exact_grad(want, y) for y in trial.targets(i)], axis=0)
        assert trial.drawn == [0, 1, 2]
        np.testing.assert_allclose(np.asarray(prepared.phi(carry)), want, rtol=1e-9)
