"""fg2u.torch estimators against closed forms on a linear-quadratic bi-level problem.

Inner: θ_{t+1} = θ_t − η(Aθ_t − Bφ), θ_0 = 0  ⇒  θ_T = J φ,  J = Σ_{j<T} Mʲ ηB = A⁻¹(I − M^T)B with
M = I − ηA (M^T: the T-th matrix power). Outer: F = ½‖Cθ_T − y‖² + ½λ‖φ‖², so
    ∇L = Jᵀ Cᵀ(Cθ_T − y) + λφ.
TRGU(K) treats θ_{T−K} as a constant: dθ_T/dφ ≈ Σ_{j<K} Mʲ ηB = A⁻¹(I − M^K)B.
Implicit estimators at θ_T with Φ(θ, φ) = Mθ + ηBφ: ∂Φ/∂θ = M, ∂Φ/∂φ = ηB, so
    Neumann(K, α): w = α Σ_{k≤K} (I − αηA)^k ∇_θF,   exact limit w = (ηA)⁻¹ ∇_θF;   HessianFree(α): w = α∇_θF;
    grad = λφ + ηBᵀ w.
All closed forms are evaluated in float64 (numpy-free torch); estimators run in float32 and float64 and
must match to a few ulps of their dtype times the condition of the computation (T·‖M‖ steps of
accumulation), i.e. rtol = 50·eps(dtype)·T for the exact ones.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import fg2u  # noqa: E402
import fg2u.torch as ft  # noqa: E402

N_THETA, N_PHI, N_OUT = 6, 4, 3
ETA, LAM = 0.1, 0.05


def _matrices():
    g = torch.Generator().manual_seed(1234)
    a0 = torch.randn(N_THETA, N_THETA, generator=g, dtype=torch.float64)
    a = a0 @ a0.T / N_THETA + 0.5 * torch.eye(N_THETA, dtype=torch.float64)  # SPD, ηλ_max < 2
    b = torch.randn(N_THETA, N_PHI, generator=g, dtype=torch.float64)
    c = torch.randn(N_OUT, N_THETA, generator=g, dtype=torch.float64)
    y = torch.randn(N_OUT, generator=g, dtype=torch.float64)
    phi = torch.randn(N_PHI, generator=g, dtype=torch.float64)
    assert ETA * torch.linalg.eigvalsh(a).max() < 1.0
    return a, b, c, y, phi


def make_problem(dtype, num_steps):
    a, b, c, y, phi = (t.to(dtype) for t in _matrices())

    def step(theta, p, _):
        return theta - ETA * (a @ theta - b @ p["w"])

    def outer(theta, p, _):
        return 0.5 * torch.sum((c @ theta - y) ** 2) + 0.5 * LAM * torch.sum(p["w"] ** 2)

    problem = fg2u.UnrolledProblem(
        init=lambda p: torch.zeros(N_THETA, dtype=dtype), step=step, outer_loss=outer, num_steps=num_steps
    )
    return problem, {"w": phi}


def closed_form(num_steps, truncation=None):
    a, b, c, y, phi = _matrices()
    eye = torch.eye(N_THETA, dtype=torch.float64)
    m = eye - ETA * a
    jac = torch.linalg.solve(a, eye - torch.linalg.matrix_power(m, num_steps)) @ b
    theta_t = jac @ phi
    residual = c.T @ (c @ theta_t - y)
    k = num_steps if truncation is None else min(truncation, num_steps)
    jac_k = torch.linalg.solve(a, eye - torch.linalg.matrix_power(m, k)) @ b
    loss = 0.5 * torch.sum((c @ theta_t - y) ** 2) + 0.5 * LAM * torch.sum(phi**2)
    return jac_k.T @ residual + LAM * phi, loss, theta_t, residual


def rtol(dtype, num_steps):
    return 50 * torch.finfo(dtype).eps * num_steps


def assert_close(got, want, rel):
    err = float(torch.linalg.vector_norm(got.double() - want) / torch.linalg.vector_norm(want))
    assert err <= rel, f"relative error {err:.3e} > {rel:.3e}"


EXACT = [
    ft.RGU(),
    ft.FGU(),
    ft.RGUCheckpointed(),
    ft.RGUCheckpointed(segment_length=7),  # does not divide T = 30
    ft.RGUCheckpointed(segment_length=1),
    ft.RGUCheckpointed(segment_length=100),  # longer than T
    ft.RGURecursive(),  # k = 4: 2 × 4 × 4 = 32 slots for T = 30, two spare
    ft.RGURecursive(branching=2),
    ft.RGURecursive(branching=30),  # one level: plain reverse mode
    ft.TRGU(truncation=30),
    ft.TRGU(truncation=1000),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("estimator", EXACT, ids=lambda e: repr(e))
def test_exact_estimators_match_closed_form(estimator, dtype):
    num_steps = 30
    problem, phi = make_problem(dtype, num_steps)
    grad, aux = estimator(problem, phi, None)
    want, loss, _, _ = closed_form(num_steps)
    assert isinstance(aux, fg2u.Aux)
    assert grad["w"].dtype == dtype and aux.outer_loss.dtype == dtype
    assert_close(grad["w"], want, rtol(dtype, num_steps))
    assert abs(float(aux.outer_loss) - float(loss)) <= rtol(dtype, num_steps) * float(loss)


@pytest.mark.parametrize("truncation", [1, 5, 29])
def test_truncated_rgu_closed_form(truncation):
    num_steps = 30
    problem, phi = make_problem(torch.float64, num_steps)
    grad, _ = ft.TRGU(truncation)(problem, phi, None)
    want, _, _, _ = closed_form(num_steps, truncation)
    assert_close(grad["w"], want, rtol(torch.float64, num_steps))
    full, _, _, _ = closed_form(num_steps)
    assert float(torch.linalg.vector_norm(want - full)) > 1e-3  # the oracle distinguishes K < T from RGU


def _implicit_parts(num_steps):
    a, b, c, y, phi = _matrices()
    _, _, theta_t, residual = closed_form(num_steps)
    return a, b, phi, residual


@pytest.mark.parametrize("num_terms,alpha", [(0, 1.0), (3, 1.0), (4, 7.0)])
def test_neumann_truncated_series(num_terms, alpha):
    num_steps = 40
    problem, phi = make_problem(torch.float64, num_steps)
    a, b, phi0, g_theta = _implicit_parts(num_steps)
    eye = torch.eye(N_THETA, dtype=torch.float64)
    w = alpha * sum(torch.linalg.matrix_power(eye - alpha * ETA * a, k) for k in range(num_terms + 1)) @ g_theta
    want = LAM * phi0 + ETA * b.T @ w
    grad, _ = ft.Neumann(num_terms, alpha=alpha)(problem, phi, None)
    assert_close(grad["w"], want, 1e-12)


def test_implicit_estimators_converge_to_implicit_gradient():
    num_steps = 40
    problem, phi = make_problem(torch.float64, num_steps)
    a, b, phi0, g_theta = _implicit_parts(num_steps)
    # (I − ∂Φ/∂θ)^{-T} = (ηA)^{-1}:  grad = λφ + Bᵀ A⁻¹ ∇_θF
    want = LAM * phi0 + b.T @ torch.linalg.solve(a, g_theta)
    # Neumann with α = 1/(η λ_max) contracts with rate 1 − λ_min/λ_max; enough terms for 1e-10
    lam = torch.linalg.eigvalsh(a)
    rate = float(1 - lam.min() / lam.max())
    terms = int(math.ceil(math.log(1e-12) / math.log(rate)))
    grad_n, _ = ft.Neumann(terms, alpha=float(1 / (ETA * lam.max())))(problem, phi, None)
    assert_close(grad_n["w"], want, 1e-9)
    # CG on an N_THETA-dimensional SPD system is exact after N_THETA iterations (up to rounding)
    grad_cg, aux = ft.ConjugateGradient(N_THETA + 2)(problem, phi, None)
    assert_close(grad_cg["w"], want, 1e-9)
    _, loss, _, _ = closed_form(num_steps)
    assert abs(float(aux.outer_loss) - float(loss)) < 1e-12


def test_hessian_free_formula():
    num_steps = 40
    problem, phi = make_problem(torch.float64, num_steps)
    a, b, phi0, g_theta = _implicit_parts(num_steps)
    # α = 1/η: ∇_φF − ∂²ℓ/∂φ∂θ ∇_θF with ℓ = ½θᵀAθ − θᵀBφ  ⇒  λφ + Bᵀ∇_θF
    grad, _ = ft.HessianFree(alpha=1 / ETA)(problem, phi, None)
    assert_close(grad["w"], LAM * phi0 + b.T @ g_theta, 1e-12)
    grad2, _ = ft.HessianFree(alpha=2.0)(problem, phi, None)
    assert_close(grad2["w"], LAM * phi0 + 2.0 * ETA * b.T @ g_theta, 1e-12)


def test_implicit_uses_last_inner_batch():
    """Φ is evaluated with inner_batches[T−1]: a per-step scale s_t of Bφ enters as ηs_{T−1}Bᵀw."""
    num_steps = 10
    a, b, c, y, phi = _matrices()
    scales = torch.linspace(1.0, 3.0, num_steps, dtype=torch.float64)
    problem = fg2u.UnrolledProblem(
        init=lambda p: torch.zeros(N_THETA, dtype=torch.float64),
        step=lambda th, p, s: th - ETA * (a @ th - s * (b @ p)),
        outer_loss=lambda th, p, _: 0.5 * torch.sum((c @ th - y) ** 2),
        num_steps=num_steps,
        inner_batches=scales,
    )
    theta = ft.unroll(problem, phi)
    grad, _ = ft.HessianFree(alpha=1.0)(problem, phi, None)
    assert_close(grad, ETA * scales[-1] * b.T @ (c.T @ (c @ theta - y)), 1e-12)


def test_fg2u_with_directions_is_the_exact_projection():
    """(1/b) Σ (∇L·v_i) v_i with the closed-form ∇L, in float32 to float32 precision."""
    num_steps = 30
    problem, phi = make_problem(torch.float32, num_steps)
    want, _, _, _ = closed_form(num_steps)
    directions = ft.sample_directions("gaussian", 7, 5, like=phi)
    v = directions["w"].double()
    projected = (v @ want) @ v / v.shape[0]
    grad, _ = ft.FG2U(num_directions=5).with_directions(problem, phi, directions)
    assert_close(grad["w"], projected, rtol(torch.float32, num_steps) * math.sqrt(N_PHI))


def test_unroll_and_meta_objective():
    num_steps = 30
    problem, phi = make_problem(torch.float64, num_steps)
    _, loss, theta_t, _ = closed_form(num_steps)
    assert_close(ft.unroll(problem, phi), theta_t, 1e-13)
    assert abs(float(ft.meta_objective(problem)(phi)) - float(loss)) < 1e-12


def test_two_phase_switches_at_switch_step():
    problem, phi = make_problem(torch.float64, 20)
    two = ft.TwoPhase(ft.HessianFree(alpha=1 / ETA), ft.RGU(), switch_step=3)
    hf, _ = ft.HessianFree(alpha=1 / ETA)(problem, phi, None)
    rgu, _ = ft.RGU()(problem, phi, None)
    state = two.init(phi)
    for meta_step, want in enumerate([hf, hf, hf, rgu, rgu]):
        assert state[0] == meta_step
        got, _, state = two.estimate(problem, phi, None, state)
        assert torch.equal(got["w"], want["w"])
    got, _ = two(problem, phi, None)  # without state: a fresh state, i.e. the first phase
    assert torch.equal(got["w"], hf["w"])
