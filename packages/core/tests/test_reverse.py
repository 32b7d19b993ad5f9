"""The checkpointed reverse-mode estimators (fg2u.estimators.reverse) on both backends (the ``side`` fixture):
RGURecursive against closed forms and against the other exact estimators (RGU, FGU), and its memory in JAX.

Problem (float64): θ_0 = Dφ, θ_{t+1} = θ_t − η_t(Aθ_t − Bφ), F = ½‖Cθ_T − y‖². With M_t = I − η_tA,

    θ_T = P Dφ + Σ_{t<T} (Π_{s>t} M_s) η_t Bφ = Jφ,   P = Π_{t<T} M_t,   ∇L = Jᵀ Cᵀ(CJφ − y),

evaluated in numpy. The estimators do the same O(T) products of 4 × 4 matrices in another order, so they agree to
a few ulps times T: rtol = 1e-10 (T ≤ 40, ‖M_t‖ < 1, so the rounding errors do not grow; 1e-10 is ~10⁵ ulps).
"""

from __future__ import annotations

import numpy as np
import pytest

import fg2u
from fg2u.estimators.reverse import recursive_radices

RNG = np.random.default_rng(7)
_A0 = RNG.normal(size=(4, 4))
A = _A0 @ _A0.T / 4 + 0.5 * np.eye(4)  # SPD, η λ_max < 2 for the η below
B, C, D = RNG.normal(size=(4, 3)), RNG.normal(size=(2, 4)), 0.5 * RNG.normal(size=(4, 3))
Y, PHI = RNG.normal(size=2), RNG.normal(size=3)
RTOL = 1e-10


def etas(num_steps: int) -> np.ndarray:
    return np.linspace(0.05, 0.25, num_steps)  # per-step sizes: every step's batch matters


def closed_form(num_steps: int) -> np.ndarray:
    jac = D.copy()
    for eta in etas(num_steps):
        jac = (np.eye(4) - eta * A) @ jac + eta * B
    return jac.T @ C.T @ (C @ jac @ PHI - Y)


def problem(side, num_steps: int) -> fg2u.UnrolledProblem:
    """The problem above: ``init`` depends on φ, the step sizes are the inner batches."""
    a, b, c, d, y = (side.array(x) for x in (A, B, C, D, Y))
    return fg2u.UnrolledProblem(
        init=lambda p: d @ p,
        step=lambda th, p, eta: th - eta * (a @ th - b @ p),
        outer_loss=lambda th, p, _: 0.5 * ((c @ th - y) ** 2).sum(),
        num_steps=num_steps,
        inner_batches=side.array(etas(num_steps)),
    )


def test_radices_cover_the_unroll_with_fewer_than_one_top_chunk_spare():
    for k in (2, 3, 4, 10):
        for t in (1, 2, 3, 4, 5, 15, 16, 17, 100, 1000, 4096, 10_000):
            radices = recursive_radices(t, k)
            levels = max(1, int(np.ceil(np.log(t) / np.log(k) - 1e-9)))
            assert len(radices) == levels and all(r == k for r in radices[1:]) and 1 <= radices[0] <= k
            spare = int(np.prod(radices)) - t
            assert 0 <= spare < k ** (levels - 1) or (levels == 1 and spare == 0), (t, k, radices)


@pytest.mark.parametrize("num_steps", [1, 2, 5, 16, 37])  # T = 1, powers of k and T that are none
@pytest.mark.parametrize("branching", [2, 3, 4])
def test_recursive_matches_closed_form_and_rgu(side, num_steps, branching):
    prob, phi = problem(side, num_steps), side.array(PHI)
    grad, aux = side.fast(side.m.RGURecursive(branching=branching).__call__)(prob, phi, None)
    want = closed_form(num_steps)
    np.testing.assert_allclose(side.np(grad), want, rtol=RTOL, atol=RTOL * np.abs(want).max())
    exact, exact_aux = side.m.RGU()(prob, phi, None)
    np.testing.assert_allclose(side.np(grad), side.np(exact), rtol=RTOL, atol=RTOL * np.abs(want).max())
    assert float(aux.outer_loss) == pytest.approx(float(exact_aux.outer_loss), rel=RTOL)


@pytest.mark.slow
def test_recursive_with_an_integer_counter_in_the_state_matches_rgu_and_fgu(side):
    """Adam's state holds an integer step count: carried through every level (and the spare slots) unchanged
    in type; RGU (reverse) and FGU (forward mode, N jvps) are the independent references."""
    num_steps = 23  # 23 = 2·4 + 7 slots of the k = 4 tree: spare slots in the top chunk
    prob = side.adam_problem(A, B, C, Y, etas(num_steps), lr=0.05)
    phi = side.array(PHI)
    got, _ = side.fast(side.m.RGURecursive(branching=4).__call__)(prob, phi, None)
    rgu, _ = side.m.RGU()(prob, phi, None)
    fgu, _ = side.m.FGU()(prob, phi, None)
    scale = np.abs(side.np(rgu)).max()
    np.testing.assert_allclose(side.np(got), side.np(rgu), rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(side.np(got), side.np(fgu), rtol=1e-8, atol=1e-8 * scale)  # forward vs reverse order


def test_recursive_settings_are_checked(side):
    with pytest.raises(ValueError, match=r"branching \(k, the chunks per level\) must be >= 2, got 1"):
        side.m.RGURecursive(branching=1)
    with pytest.raises(TypeError, match="branching"):
        side.m.RGURecursive(branching=2.5)
    assert side.m.make("rgu_recursive", branching=3) == side.m.RGURecursive(3)
    assert side.m.RGURecursive().settings() == {"estimator": "RGURecursive", "branching": 4, "check_finite": False}


def test_torch_recursive_replays_random_ops(torch_side):
    """A step with a random perturbation (as dropout): each rematerialised chunk replays the draws of the forward
    pass from the saved RNG state, so with the same seed the gradient equals RGU's (which draws once)."""
    torch = torch_side.torch
    a, b = torch.as_tensor(A), torch.as_tensor(B)

    def step(th, p, _):
        return th - 0.1 * (a @ th - b @ p) * (1 + 0.5 * torch.rand(4, dtype=th.dtype))

    prob = fg2u.UnrolledProblem(lambda p: 0 * (b @ p), step, lambda th, p, _: (th**2).sum(), num_steps=29)
    phi = torch.as_tensor(PHI)
    torch.manual_seed(3)
    want, _ = torch_side.m.RGU()(prob, phi, None)
    torch.manual_seed(3)
    got, _ = torch_side.m.RGURecursive(branching=3)(prob, phi, None)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=0)
    torch.manual_seed(4)
    other, _ = torch_side.m.RGU()(prob, phi, None)
    assert not torch.allclose(other, want)  # the draws matter: a wrong replay would be caught


def _temp_states(jax, estimator, num_steps: int, dim: int) -> float:
    """XLA's compiled temporary memory of one estimate, in units of the state size (dim float32)."""
    jnp = jax.numpy
    rng = np.random.default_rng(0)
    a, y = jnp.asarray(rng.uniform(0.5, 1.5, dim), jnp.float32), jnp.asarray(rng.normal(size=dim), jnp.float32)
    prob = fg2u.UnrolledProblem(
        init=jnp.zeros_like,
        step=lambda th, p, _: th - 0.1 * (a * th + 0.1 * jnp.sin(th) - p),
        outer_loss=lambda th, p, _: 0.5 * jnp.sum((th - y) ** 2),
        num_steps=num_steps,
    )
    compiled = jax.jit(lambda p: estimator(prob, p, None)).lower(jnp.zeros(dim, jnp.float32)).compile()
    return compiled.memory_analysis().temp_size_in_bytes / (4 * dim)


@pytest.mark.slow
@pytest.mark.parametrize("branching", [2, 4])
def test_jax_recursive_memory_grows_logarithmically_in_t(branching):
    """Compiled temp memory at T = 64, 512, 4096, N = 10⁴ float32 (one state: 40 kB). Each level of the tree holds
    at most k + 1 state-sized buffers (its ≤ k stored chunk inputs and the loop carry) plus its loop's bookkeeping
    (counters, index arrays: under 1 kB), and T × 8 adds ⌈log_k 8⌉ levels, so each × 8 may add at most
    ⌈log_k 8⌉·((k + 1) states + 1 kB): 9.08 states for k = 2, 10.05 for k = 4 (measured: 9.05 and 7–8). RGU
    stores every step's state: + 7·T states per × 8 (measured T + 2 in all)."""
    jax = pytest.importorskip("jax")
    import fg2u.jax as fj

    levels_per_8 = int(np.ceil(np.log(8) / np.log(branching) - 1e-9))
    dim = 10_000
    bound = levels_per_8 * (branching + 1 + 1024 / (4 * dim))
    recursive = [_temp_states(jax, fj.RGURecursive(branching), t, dim) for t in (64, 512, 4096)]
    rgu = [_temp_states(jax, fj.RGU(), t, dim) for t in (64, 512, 4096)]
    for small, large in zip(recursive, recursive[1:]):
        assert large - small <= bound, (recursive, bound)
    for (t_small, small), large in zip(zip((64, 512), rgu), rgu[1:]):
        assert large - small >= 7 * t_small * 0.95, rgu  # linear: at least 95 % of one state per added step
    assert recursive[-1] < 40 < rgu[-1] / 100  # at T = 4096: tens of states against thousands
