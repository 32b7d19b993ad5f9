"""fg2u.torch.harness: the meta step (gradient accumulation, estimator state, a torch.optim optimiser over
φ's leaves, gradient clipping), merge_states and the Driver the runner uses.

Oracle: plain SGD on φ with the mean of the accumulated exact gradients from the closed-form quadratic
meta-gradient g(φ) = Mᵀ Cᵀ (C M φ − y), M = (I − (I − ηA)^T) A⁻¹ B. In float64 the estimator (exact RGU)
and the oracle differ by rounding only: rtol 1e-9 leaves 10⁶ ulps for T = 12 steps of a 4 × 4 system.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import fg2u  # noqa: E402
import fg2u.torch as ft  # noqa: E402
from fg2u.experiment.records import Memory  # noqa: E402
from fg2u.experiment.runner import Prepared  # noqa: E402
from fg2u.torch.harness import Driver, make_meta_step, merge_states  # noqa: E402

T, ETA, LR = 12, 0.2, 0.05
_RNG = np.random.default_rng(5)
_A0 = _RNG.normal(size=(4, 4))
A = _A0 @ _A0.T / 4 + 0.5 * np.eye(4)
B, C, Y, PHI = _RNG.normal(size=(4, 3)), _RNG.normal(size=(2, 4)), _RNG.normal(size=2), _RNG.normal(size=3)


def exact_grad(phi, y):
    m = (np.eye(4) - np.linalg.matrix_power(np.eye(4) - ETA * A, T)) @ np.linalg.solve(A, B)
    return m.T @ C.T @ (C @ m @ phi - y)


def make_problem(y):
    a, b, c = (torch.as_tensor(x) for x in (A, B, C))
    return fg2u.UnrolledProblem(
        init=lambda p: torch.zeros(4, dtype=p.dtype),
        step=lambda th, p, _: th - ETA * (a @ th - b @ p),
        outer_loss=lambda th, p, yy: 0.5 * torch.sum((c @ th - yy) ** 2),
        num_steps=T,
        outer_batch=torch.as_tensor(y),
    )


def test_merge_states_averages_floats_and_keeps_counters():
    merged = merge_states([(torch.tensor([1.0, 3.0]), 4), (torch.tensor([3.0, 5.0]), 4)])
    assert torch.equal(merged[0], torch.tensor([2.0, 4.0])) and merged[1] == 4
    only = (torch.tensor([1.0]), 2)
    assert merge_states([only]) is only  # one estimate: its state as is


def test_meta_step_accumulates_and_updates_phi_in_place():
    phi = torch.tensor(PHI, requires_grad=True)
    opt = torch.optim.SGD([phi], lr=LR)
    est = ft.RGU()
    step = make_meta_step(est, make_problem, opt, phi)
    want, state = PHI.copy(), est.init(phi)
    ys = [Y, -2 * Y]
    for k in range(2):
        state, loss = step(state, [k, k + 10], ys)
        want = want - LR * np.mean([exact_grad(want, y) for y in ys], axis=0)
        np.testing.assert_allclose(phi.detach().numpy(), want, rtol=1e-9)
        assert phi.grad is None  # zeroed (set to None) after the optimiser step
    with pytest.raises(ValueError, match="one key per accumulated estimate: got 1 keys for 2 inputs"):
        step(state, [0], ys)


def test_meta_step_clips_the_mean_estimate_to_max_grad_norm():
    ys = [Y, -2 * Y]
    exact = np.mean([exact_grad(PHI, y) for y in ys], axis=0)
    norm = float(np.linalg.norm(exact))
    for limit, scale in ((0.5 * norm, 0.5), (2.0 * norm, 1.0)):  # clipped to the limit / left alone
        phi = torch.tensor(PHI, requires_grad=True)
        step = make_meta_step(ft.RGU(), make_problem, torch.optim.SGD([phi], lr=1.0), phi, max_grad_norm=limit)
        step((), [0, 1], ys)
        np.testing.assert_allclose(phi.detach().numpy(), PHI - scale * exact, rtol=1e-9)
    with pytest.raises(ValueError, match="max_grad_norm must be positive or None"):
        make_meta_step(ft.RGU(), make_problem, torch.optim.SGD([phi], lr=1.0), phi, max_grad_norm=0.0)


def test_meta_step_projects_phi_in_place_without_autograd():
    phi = torch.tensor(PHI, requires_grad=True)
    step = make_meta_step(
        ft.RGU(), make_problem, torch.optim.SGD([phi], lr=LR), phi, project=lambda p: p.clamp_(-0.01, 0.01)
    )
    step((), [0], [Y])
    want = np.clip(PHI - LR * exact_grad(PHI, Y), -0.01, 0.01)
    np.testing.assert_allclose(phi.detach().numpy(), want, rtol=1e-9)


class QuadraticTrial:
    """The quadratic problem as a runner trial: A = 2 accumulated targets per step, drawn by step index."""

    num_meta_steps = 3
    grad_accumulation = 2

    def __init__(self):
        self.phi = torch.tensor(PHI, requires_grad=True)
        self.drawn = []

    def initial_phi(self):
        return self.phi

    def meta_optimizer(self):
        return lambda params: torch.optim.SGD(params, lr=LR)

    def make_problem(self, y):
        return make_problem(y)

    def targets(self, step):
        return [Y * (step + 1), -Y]

    def next_inputs(self, step):
        self.drawn.append(step)
        return [step, step + 100], self.targets(step)

    def meta_step_options(self):
        return {}


def test_driver_measures_the_first_step_and_runs_the_trials_meta_steps():
    trial = QuadraticTrial()
    prepared = Driver().prepare(ft.RGU(), trial)
    assert isinstance(prepared, Prepared) and prepared.memory is None and trial.drawn == []
    carry, want = prepared.carry, PHI.copy()
    for i in range(3):
        carry, loss = prepared.step(carry, i)
        if i == 0:  # the first step is measured in this process (peak-RSS growth)
            assert isinstance(prepared.memory, Memory) and prepared.memory.measure == "peak_rss_growth"
        want = want - LR * np.mean([exact_grad(want, y) for y in trial.targets(i)], axis=0)
    assert trial.drawn == [0, 1, 2]
    assert prepared.phi(carry) is trial.phi  # φ's tensors are updated in place
    np.testing.assert_allclose(trial.phi.detach().numpy(), want, rtol=1e-9)
