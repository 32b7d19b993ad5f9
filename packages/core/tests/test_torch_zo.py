"""FG²U-ZO on torch: its error against the exact directional derivatives (FG²U with the same directions)
is O(ε) for forward differences and O(ε²) for central ones (measured as slopes in float64), and it
works on black-box objectives.

For fixed directions v_i, ĝ_ZO − ĝ_FG2U = (1/b) Σ_i r_i(ε) v_i with the Taylor remainder
    forward: r_i = ε/2 · vᵢᵀ∇²L vᵢ + O(ε²),    central: r_i = ε²/6 · ∇³L[vᵢ,vᵢ,vᵢ] + O(ε⁴),
so halving ε divides the error by 2 (forward) or 4 (central) up to a relative O(ε) (resp. O(ε²))
correction; with ε ≤ 4e-3 and O(1) derivatives the log-log slope is within 0.1 of 1 (resp. 2).
Rounding adds O(u·|L|/ε) ≈ 1e-13, negligible at these ε in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fg2u  # noqa: E402
import fg2u.torch as ft  # noqa: E402


def make_problem(dtype=torch.float64):
    a = torch.tensor([[1.0, 0.4, 0.0], [0.4, 1.2, 0.3], [0.0, 0.3, 0.9]], dtype=dtype)
    problem = fg2u.UnrolledProblem(
        init=lambda p: 0.1 * p,
        step=lambda th, p, _: th - 0.3 * (a @ th + 0.2 * torch.sin(th) - torch.tanh(p) * p),
        outer_loss=lambda th, p, _: torch.sum(torch.cos(th) * th**2) + 0.1 * torch.sum(p**3),
        num_steps=8,
    )
    return problem, torch.tensor([0.5, -0.8, 1.2], dtype=dtype)


def _slope(eps, errs):
    return float(np.polyfit(np.log(eps), np.log(errs), 1)[0])


@pytest.mark.parametrize("scheme,order", [("forward", 1), ("central", 2)])
def test_zo_error_order(scheme, order):
    problem, phi = make_problem()
    dirs = ft.sample_directions("rademacher", 1, 4, like=phi)
    exact, _ = ft.FG2U(4).with_directions(problem, phi, dirs)
    eps = np.array([4e-3, 2e-3, 1e-3, 5e-4])
    errs = []
    for e in eps:
        zo, _ = ft.FG2U_ZO(4, eps=float(e), scheme=scheme).with_directions(problem, phi, dirs)
        errs.append(float((zo - exact).norm()))
    assert abs(_slope(eps, errs) - order) <= 0.1, (scheme, errs)


def test_zo_aux_losses():
    problem, phi = make_problem()
    dirs = ft.sample_directions("gaussian", 2, 3, like=phi)
    objective = ft.meta_objective(problem)
    _, aux_f = ft.FG2U_ZO(3, eps=1e-3).with_directions(problem, phi, dirs)
    assert float(aux_f.outer_loss) == pytest.approx(float(objective(phi)), rel=1e-14)
    _, aux_c = ft.FG2U_ZO(3, eps=1e-3, scheme="central").with_directions(problem, phi, dirs)
    values = [float(objective(phi + s * 1e-3 * dirs[i])) for i in range(3) for s in (1, -1)]
    assert float(aux_c.outer_loss) == pytest.approx(sum(values) / 6, rel=1e-14)


def test_black_box_objective_matches_unrolled_problem():
    """A BlackBoxProblem whose objective is plain Python/NumPy code (not differentiable, not vmappable)."""
    problem, phi = make_problem()
    objective = ft.meta_objective(problem)

    def black_box(p, data):
        return float(objective(torch.as_tensor(np.asarray(p.numpy()), dtype=torch.float64))) + data

    box = fg2u.BlackBoxProblem(objective=black_box, data=0.0)
    for scheme in ("forward", "central"):
        est = ft.FG2U_ZO(num_directions=5, eps=1e-4, scheme=scheme, chunk_size=2)
        got, aux = est(box, phi, 3)
        want, aux_u = est(problem, phi, 3)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
        assert got.dtype == torch.float64
        assert float(aux.outer_loss) == pytest.approx(float(aux_u.outer_loss), rel=1e-12)


def test_zo_is_close_to_the_gradient_in_expectation():
    """Central ZO with many directions approaches ∇L within the Chebyshev bound of FG²U plus the O(ε²) bias."""
    problem, phi = make_problem()
    exact, _ = ft.RGU()(problem, phi, None)
    b, delta = 20_000, 1e-2
    zo, _ = ft.FG2U_ZO(num_directions=b, eps=1e-4, scheme="central", chunk_size=10_000)(problem, phi, 5)
    bound = math.sqrt((3 + 1) / (b * delta)) * float(exact.norm()) + 1e-6
    assert float((zo - exact).norm()) <= bound


def test_zo_float32_runs_without_autograd():
    problem, phi = make_problem(torch.float32)
    phi = phi.clone().requires_grad_(True)
    grad, aux = ft.FG2U_ZO(2, eps=1e-2)(problem, phi, 0)
    assert grad.dtype == torch.float32 and not grad.requires_grad and not aux.outer_loss.requires_grad
