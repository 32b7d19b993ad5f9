"""fg2u.torch.gradient_quality against a linear-quadratic bi-level problem with closed-form meta-gradients.

Same oracle as test_jax_quality.py: θ_0 = 0, θ_{t+1} = θ_t − η(Aθ_t − Bφ), F = ½‖Cθ_T − y‖², so
∇L = J_Tᵀ Cᵀ(C J_T φ − y) and TRGU(K) = J_Kᵀ Cᵀ(C J_T φ − y) with J_K = A⁻¹(I − M^K)B, M = I − ηA.
Estimators run in float64 here, so deterministic comparisons hold to 1e-9. FG²U with b Rademacher
directions: X = ‖ĝ − g‖² has mean (N − 1)/b ‖g‖² and variance
[b·2(N − 2)²(‖g‖⁴ − Σg_i⁴) + 2b(b − 1) tr(Σ_u²)]/b⁴ with Σ_u = ‖g‖²I + ggᵀ − 2 diag(g²) (derivation in
test_jax_quality.py); the mean of R repeats must lie within 5 standard deviations of it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fg2u  # noqa: E402
import fg2u.torch as ft  # noqa: E402
from fg2u.quality import fg2u_expected_squared_error  # noqa: E402

N_THETA, N_PHI, N_OUT, ETA = 6, 5, 3, 0.1
_rng = np.random.default_rng(0)
_q, _ = np.linalg.qr(_rng.normal(size=(N_THETA, N_THETA)))
A = _q @ np.diag(np.linspace(0.5, 5.0, N_THETA)) @ _q.T
B, C, Y, PHI = (_rng.normal(size=s) for s in ((N_THETA, N_PHI), (N_OUT, N_THETA), N_OUT, N_PHI))


def _jac(k: int) -> np.ndarray:
    return np.linalg.solve(A, (np.eye(N_THETA) - np.linalg.matrix_power(np.eye(N_THETA) - ETA * A, k)) @ B)


def exact_grad(T: int, y=Y, truncation: int | None = None) -> np.ndarray:
    return _jac(truncation or T).T @ C.T @ (C @ _jac(T) @ PHI - y)


def make_problem(T: int, y=Y) -> fg2u.UnrolledProblem:
    a, b, c = (torch.tensor(x, dtype=torch.float64) for x in (A, B, C))
    return fg2u.UnrolledProblem(
        init=lambda phi: torch.zeros(N_THETA, dtype=torch.float64),
        step=lambda theta, phi, batch: theta - ETA * (a @ theta - b @ phi),
        outer_loss=lambda theta, phi, batch: 0.5 * torch.sum((c @ theta - batch) ** 2),
        num_steps=T,
        outer_batch=torch.tensor(y, dtype=torch.float64),
    )


def _cos(u, v) -> float:
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def test_reference_to_itself_and_truncation_against_closed_form() -> None:
    T, K = 20, 2
    phi = torch.tensor(PHI)
    rgu, trgu = ft.gradient_quality(
        make_problem(T), phi, {"RGU": ft.RGU(), "TRGU": ft.TRGU(truncation=K)}, num_repeats=2
    )
    assert rgu.cosine_mean == pytest.approx(1.0, abs=1e-12) and rgu.relative_error_mean == 0.0
    assert rgu.num_repeats == 2 and rgu.meta_dim == N_PHI and rgu.reference == "RGU"
    g, g_k = exact_grad(T), exact_grad(T, truncation=K)
    assert trgu.cosine_mean == pytest.approx(_cos(g_k, g), abs=1e-9)
    assert trgu.norm_ratio_mean == pytest.approx(np.linalg.norm(g_k) / np.linalg.norm(g), rel=1e-9)
    for q in (rgu, trgu):
        assert q.seconds_per_estimate > 0
        assert q.memory_bytes is None or q.memory_bytes >= 0


def test_fg2u_squared_error_matches_rademacher_variance() -> None:
    T, b, R = 8, 2, 300
    g = exact_grad(T)
    norm2, n = float(g @ g), N_PHI
    (q,) = ft.gradient_quality(
        make_problem(T), torch.tensor(PHI), [ft.FG2U(num_directions=b)], num_repeats=R, seed=3, measure_memory=False
    )
    assert q.name == "FG2U" and q.memory_bytes is None
    x = (np.asarray(q.relative_errors) ** 2) * norm2
    sigma_u = norm2 * np.eye(n) + np.outer(g, g) - 2 * np.diag(g**2)
    var_x = (
        b * 2 * (n - 2) ** 2 * (norm2**2 - float(np.sum(g**4))) + 2 * b * (b - 1) * float(np.trace(sigma_u @ sigma_u))
    ) / b**4
    assert abs(x.mean() - fg2u_expected_squared_error(norm2, n, b)) < 5 * math.sqrt(var_x / R)


def test_problem_function_with_per_repeat_inputs() -> None:
    T, K = 10, 3
    ys = [np.random.default_rng(s).normal(size=N_OUT) for s in range(3)]
    rgu, trgu = ft.gradient_quality(
        lambda y: make_problem(T, y), torch.tensor(PHI), {"rgu": ft.RGU(), "trgu": ft.TRGU(truncation=K)}, inputs=ys
    )
    assert rgu.cosines == pytest.approx((1.0,) * 3, abs=1e-12)
    assert trgu.cosines == pytest.approx(tuple(_cos(exact_grad(T, y, K), exact_grad(T, y)) for y in ys), abs=1e-9)


def test_bad_arguments_are_explained() -> None:
    phi = torch.tensor(PHI)
    with pytest.raises(ValueError, match="inputs"):
        ft.gradient_quality(lambda y: make_problem(3, y), phi, [ft.RGU()])
    with pytest.raises(ValueError, match="unique"):
        ft.gradient_quality(make_problem(3), phi, [ft.RGU(), ft.RGU()])
    with pytest.raises(TypeError, match="UnrolledProblem"):
        ft.gradient_quality(42, phi, [ft.RGU()])
    with pytest.raises(ValueError, match="num_repeats"):
        ft.gradient_quality(make_problem(3), phi, [ft.RGU()], num_repeats=0)


def test_stateful_estimator_keeps_its_state_across_repeats() -> None:
    """Running control variate on a fixed problem: c_k → g, so its late errors fall far below plain FG²U's."""
    if not hasattr(ft, "RunningControlVariate"):
        pytest.skip("this fg2u.torch has no RunningControlVariate")
    T, b, R = 8, 2, 40
    plain, running = ft.gradient_quality(
        make_problem(T),
        torch.tensor(PHI),
        {"plain": ft.FG2U(num_directions=b), "running": ft.RunningControlVariate(ft.FG2U(num_directions=b), decay=0.9)},
        num_repeats=R,
        seed=5,
        measure_memory=False,
    )
    assert running.relative_errors[0] == pytest.approx(plain.relative_errors[0], rel=1e-9)
    assert np.mean(np.square(running.relative_errors[R // 2 :])) < 0.5 * np.mean(
        np.square(plain.relative_errors[R // 2 :])
    )


ORDER_SCRIPT = """
import json, sys, torch, fg2u, fg2u.torch as ft
torch.manual_seed(0)
n, h, T = 32, 64, 50
X, y = torch.randn(128, n), torch.randn(128)
def inner_loss(p, phi, b):
    return torch.mean((torch.tanh(X @ p["w1"]) @ p["w2"] - y) ** 2) + torch.sum(torch.exp(phi) * p["w1"] ** 2)
def outer_loss(s, phi, b):
    return torch.mean((torch.tanh(X @ s.params["w1"]) @ s.params["w2"] - y) ** 2)
params0 = {"w1": torch.randn(n, h) * 0.1, "w2": torch.randn(h) * 0.1}
init, step = ft.optim_transition(inner_loss, ft.optim.sgd(0.05), params0)
problem = fg2u.UnrolledProblem(init, step, outer_loss, T)
estimators = {"FG2U b=4": ft.FG2U(num_directions=4), "FG2U b=8": ft.FG2U(num_directions=8), "TRGU": ft.TRGU(5)}
order, warmup = sys.argv[1].split(","), sys.argv[2] == "1"
res = ft.gradient_quality(problem, torch.full((n, h), -3.0), {k: estimators[k] for k in order}, num_repeats=2,
                          warmup=warmup)
print(json.dumps({q.name: q.memory_bytes for q in res}))
"""


def _memory_in_fresh_process(order: list[str], warmup: bool) -> dict:
    import json
    import os
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", ORDER_SCRIPT, ",".join(order), str(int(warmup))],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_memory_column_does_not_depend_on_the_order_of_the_estimators() -> None:
    """In a fresh process the first torch.autograd.grad with explicit cotangents (FG²U's kernel) imports
    sympy and mpmath (≈ 38 MiB of RSS, once). Without the warm-up that lands on whichever FG²U runs first;
    with it, each estimator's figure is the same in both orders. Tolerance 2 MiB: RSS is measured in pages
    and glibc's arenas and trim threshold move it by up to ≈ 1 MiB between identical runs (0.8 MiB seen),
    against a 38 MiB effect. Each order runs in its own fresh process (this one has imported sympy long ago)."""
    names = ["FG2U b=4", "FG2U b=8", "TRGU"]
    forward = _memory_in_fresh_process(names, warmup=True)
    if any(v is None for v in forward.values()):
        pytest.skip("peak-RSS reset unavailable here (needs Linux /proc/self/clear_refs)")
    backward = _memory_in_fresh_process(names[::-1], warmup=True)
    mib = 2**20
    for name in names:
        assert abs(forward[name] - backward[name]) <= 2 * mib, (name, forward, backward)
    # the order effect the warm-up removes is real: without it, the first FG²U carries the one-off
    cold = _memory_in_fresh_process(names, warmup=False)
    assert cold["FG2U b=4"] - forward["FG2U b=4"] > 20 * mib, (
        "the first FG2U no longer carries a one-off of tens of MiB in a fresh process; if torch stopped "
        f"importing sympy in torch.autograd.grad, update the docs (estimator guide) — cold {cold}, warm {forward}"
    )
