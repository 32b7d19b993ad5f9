"""FG²U on torch is an unbiased estimator whose variance falls as 1/b (Lemma 3.1), and its chunking /
vectorisation / key handling do not change the estimate.

Problem (non-linear, float64): θ_{t+1} = θ_t − η(Aθ_t + 0.1 sin θ_t − B tanh φ), F = ‖θ_T − 1‖²;
the exact ∇L is RGU's (checked against closed forms in test_torch_oracle.py).

Per direction the term (g·v)v has mean g when E[vvᵀ] = I, and
    E‖(g·v)v − g‖² = E[(g·v)²‖v‖²] − ‖g‖² = (N − 1)‖g‖²  (Rademacher, sphere: ‖v‖² = N)
                                           = (N + 1)‖g‖²  (Gaussian: E[(g·v)²‖v‖²] = (N + 2)‖g‖²),
so for the mean of b independent terms E‖ĝ − g‖² = (N ∓ 1)/b · ‖g‖² ≤ (N + 1)/b · ‖g‖² (Lemma 3.1).
"""

from __future__ import annotations

import math
import warnings

import pytest

torch = pytest.importorskip("torch")

import fg2u  # noqa: E402
import fg2u.torch as ft  # noqa: E402
from fg2u.torch import _chunks  # noqa: E402

N = 3  # meta-dimension


def make_problem(dtype=torch.float64, num_steps=6):
    a = torch.tensor(
        [[1.0, 0.3, 0.0, 0.1], [0.3, 1.5, 0.2, 0.0], [0.0, 0.2, 0.8, 0.1], [0.1, 0.0, 0.1, 1.2]], dtype=dtype
    )
    b = torch.tensor([[1.0, -0.5, 0.2], [0.3, 0.8, -0.4], [-0.6, 0.1, 0.9], [0.2, 0.2, 0.2]], dtype=dtype)
    problem = fg2u.UnrolledProblem(
        init=lambda p: torch.zeros(4, dtype=dtype),
        step=lambda th, p, _: th - 0.2 * (a @ th + 0.1 * torch.sin(th) - b @ torch.tanh(p)),
        outer_loss=lambda th, p, _: torch.sum((th - 1.0) ** 2),
        num_steps=num_steps,
    )
    return problem, torch.tensor([-0.7, 0.2, 1.1], dtype=dtype)


@pytest.fixture(scope="module")
def exact():
    problem, phi = make_problem()
    grad, _ = ft.RGU()(problem, phi, None)
    return grad


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian", "sphere"])
def test_unbiased_within_chebyshev_bound(distribution, exact):
    """Markov on ‖ĝ−g‖²: P(‖ĝ − g‖ ≥ √((N+1)/(bδ))·‖g‖) ≤ δ = 1e-2 (a fixed seed: the test is deterministic,
    and a biased estimator — wrong scale, missing term — lands far outside: the bound is 9% of ‖g‖)."""
    b, delta = 50_000, 1e-2
    problem, phi = make_problem()
    grad, aux = ft.FG2U(num_directions=b, distribution=distribution, chunk_size=20_000)(problem, phi, 2024)
    bound = math.sqrt((N + 1) / (b * delta)) * float(exact.norm())
    assert 0 < float((grad - exact).norm()) <= bound
    assert abs(float(aux.outer_loss) - float(ft.meta_objective(problem)(phi))) < 1e-12


def test_orthogonal_blocks_are_exact_per_full_block(exact):
    """b a multiple of N: each block of N orthogonal directions of norm √N has Σ v vᵀ = N·I, so the
    estimate is exactly ∇L (up to rounding)."""
    problem, phi = make_problem()
    grad, _ = ft.FG2U(num_directions=4 * N, distribution="orthogonal")(problem, phi, 7)
    torch.testing.assert_close(grad, exact, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("distribution,excess", [("rademacher", N - 1), ("gaussian", N + 1)])
def test_variance_is_n_over_b(distribution, excess, exact):
    """Mean squared error over R independent estimates vs the exact (N ∓ 1)/b·‖g‖², within 5 standard
    errors of the sample mean (CLT; two-sided failure probability ≈ 6e-7 per check); and b·MSE constant."""
    problem, phi = make_problem()
    repeats = 4000
    g2 = float(exact.pow(2).sum())
    for b in (1, 4, 16):
        est = ft.FG2U(num_directions=b)
        dirs = ft.sample_directions(distribution, 100 + b, repeats * b, like=phi).reshape(repeats, b, N)
        # R independent estimates in one call: vmap over the estimator itself
        estimates = torch.func.vmap(lambda d, est=est: est.with_directions(problem, phi, d)[0])(dirs)
        sq = ((estimates - exact) ** 2).sum(dim=1)
        mse, se = float(sq.mean()), float(sq.std()) / math.sqrt(repeats)
        expected = excess / b * g2
        assert abs(mse - expected) <= 5 * se, (b, mse, expected, se)
        assert mse <= (N + 1) / b * g2 + 5 * se  # Lemma 3.1
    # the mean estimate is unbiased too (per coordinate, 5 standard errors)
    mean_err = (estimates.mean(0) - exact).abs()
    assert bool((mean_err <= 5 * estimates.std(0) / math.sqrt(repeats)).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunking_does_not_change_the_estimate(dtype):
    problem, phi = make_problem(dtype)
    b = 13
    dirs = ft.sample_directions("gaussian", 5, b, like=phi)
    ref, ref_aux = ft.FG2U(num_directions=b).with_directions(problem, phi, dirs)
    assert ref.dtype == dtype
    scale = float(ref.abs().max())
    for chunk in (1, 3, 7, 13, 100):
        got, aux = ft.FG2U(num_directions=b, chunk_size=chunk).with_directions(problem, phi, dirs)
        # only the summation order differs: ≤ b·eps·(largest partial sum)
        assert float((got - ref).abs().max()) <= b * torch.finfo(dtype).eps * 10 * scale
        assert float(aux.outer_loss) == pytest.approx(float(ref_aux.outer_loss), rel=10 * torch.finfo(dtype).eps)


def test_sampled_equals_explicit_directions_and_key_semantics():
    problem, phi = make_problem()
    est = ft.FG2U(num_directions=5, distribution="sphere", chunk_size=2)
    g1, _ = est(problem, phi, 11)
    g2, _ = est(problem, phi, 11)
    assert torch.equal(g1, g2)  # same int seed, same directions
    explicit, _ = est.with_directions(problem, phi, ft.sample_directions("sphere", 11, 5, like=phi))
    assert torch.equal(g1, explicit)
    gen = torch.Generator().manual_seed(11)
    a, _ = est(problem, phi, gen)
    b, _ = est(problem, phi, gen)  # the generator advanced: new directions
    assert torch.equal(a, g1) and not torch.equal(a, b)


def test_pytree_meta_parameters_and_directions():
    """φ as a dict of tensors of different shapes: directions are sampled over the whole vector."""
    problem, phi = make_problem()
    tree_problem = problem.replace(
        step=lambda th, p, bt: problem.step(th, torch.cat([p["a"].reshape(-1), p["b"]]), bt),
        init=lambda p: problem.init(None),
        outer_loss=lambda th, p, bt: problem.outer_loss(th, None, bt),
    )
    tree_phi = {"a": phi[:2].reshape(1, 2), "b": phi[2:]}
    dirs = ft.sample_directions("rademacher", 3, 6, like=tree_phi)
    assert dirs["a"].shape == (6, 1, 2) and dirs["b"].shape == (6, 1)
    flat_dirs = torch.cat([dirs["a"].reshape(6, 2), dirs["b"]], dim=1)
    got, _ = ft.FG2U(6).with_directions(tree_problem, tree_phi, dirs)
    want, _ = ft.FG2U(6).with_directions(problem, phi, flat_dirs)
    torch.testing.assert_close(torch.cat([got["a"].reshape(-1), got["b"]]), want, rtol=1e-14, atol=1e-14)


def test_loop_fallback_when_vmap_fails(monkeypatch):
    """If torch.func.vmap cannot batch the problem, each chunk loops over its directions: same estimate."""
    problem, phi = make_problem()
    dirs = ft.sample_directions("gaussian", 9, 6, like=phi)
    ref, _ = ft.FG2U(6, chunk_size=4).with_directions(problem, phi, dirs)

    def failing_vmap(*args, **kwargs):
        raise RuntimeError("vmap: no batching rule for this operation (simulated)")

    monkeypatch.setattr(_chunks.torch.func, "vmap", failing_vmap)
    monkeypatch.setattr(_chunks, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got, _ = ft.FG2U(6, chunk_size=4).with_directions(problem, phi, dirs)
    torch.testing.assert_close(got, ref, rtol=1e-13, atol=1e-15)
    assert any("falling back to a loop" in str(w.message) for w in caught)


def test_memory_state_is_not_recorded_by_autograd():
    """FG2U runs the primal loop without recording a reverse graph, even when φ requires grad."""
    problem, phi = make_problem()
    phi = phi.clone().requires_grad_(True)
    grad, aux = ft.FG2U(2)(problem, phi, 0)
    assert not grad.requires_grad and not aux.outer_loss.requires_grad
