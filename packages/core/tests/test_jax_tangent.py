"""JAX FG²U draws its directions chunk by chunk: v_i depends on (key, i) only, memory does not grow with b.

Oracles: the explicit-direction path ``with_directions(sample_directions(key))`` (same directions, given),
the exact gradient from RGU for the directional derivatives, and XLA's compiled memory analysis.
"""

from __future__ import annotations

import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import fg2u  # noqa: E402
import fg2u.jax as fj  # noqa: E402
from fg2u.directions import get_distribution  # noqa: E402
from fg2u.jax.directions import KeyedDirections, drawn_per_direction  # noqa: E402

N = 64
U32 = float(np.finfo(np.float32).eps) / 2  # unit round-off of float32


def _problem(num_steps: int = 5, n: int = N):
    a = jnp.linspace(0.5, 1.5, n)
    y = jnp.cos(jnp.arange(n, dtype=jnp.float32))
    return fg2u.UnrolledProblem(
        init=lambda phi: jnp.zeros_like(phi),
        step=lambda th, phi, _: th - 0.1 * (a * th + 0.1 * jnp.sin(th) - phi),
        outer_loss=lambda th, phi, _: 0.5 * jnp.sum((th - y) ** 2),
        num_steps=num_steps,
    ), jnp.sin(jnp.arange(n, dtype=jnp.float32))


@pytest.mark.slow
def test_keyed_draw_equals_sample_directions_for_every_chunk_size(distribution="rademacher"):
    problem, phi = _problem()
    key = jax.random.key(4)
    b = 40
    dirs = fj.sample_directions(distribution, key, b, like=phi)
    want, _ = jax.jit(fj.FG2U(b).with_directions)(problem, phi, dirs)
    # None: one chunk of 40, summed by a reduction; 3 (does not divide 40: the padded indices are drawn and
    # masked out): chunks of up to 32 packed directions are summed term by term; 1: the outer loss by a jvp
    for chunk in (None, 3, 1):
        got, _ = jax.jit(fj.FG2U(b, distribution=distribution, chunk_size=chunk).__call__)(problem, phi, key)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-5, atol=1e-6)
    # each direction is a function of (key, i): the first 3 of 7 are the 3 of a b = 3 draw
    for dist in ("rademacher", "gaussian", "sphere"):
        seven, three = (fj.sample_directions(dist, key, b, like=phi) for b in (7, 3))
        np.testing.assert_allclose(np.asarray(three), np.asarray(seven[:3]), rtol=1e-6, atol=0)


@pytest.mark.slow
def test_outer_loss_coefficients_match_rgu_with_one_or_many_directions_per_chunk():
    """c_j = ∇L·v_j whether the outer loss is differentiated by a jvp per direction (chunks of 1) or by one
    reverse pass dotted with the chunk's tangents (chunks ≥ 2), here with an outer loss that depends on φ
    directly and a state with an integer counter. Oracle: RGU's exact ∇L projected on the same directions."""
    n, b = 24, 5
    a = jnp.linspace(0.5, 1.5, n)
    y = jnp.cos(jnp.arange(n, dtype=jnp.float32))
    problem = fg2u.UnrolledProblem(
        init=lambda phi: {"w": 0.5 * phi, "count": jnp.zeros((), jnp.int32)},
        step=lambda s, phi, _: {
            "w": s["w"] - 0.1 * (a * s["w"] + 0.1 * jnp.sin(s["w"]) - phi),
            "count": s["count"] + 1,
        },
        outer_loss=lambda s, phi, _: (
            0.5 * jnp.sum((s["w"] - y) ** 2)
            + jnp.sum(jnp.sin(phi) * s["w"])
            + 0.01 * s["count"].astype(jnp.float32) * jnp.sum(phi**2)
        ),
        num_steps=6,
    )
    phi = jnp.sin(jnp.arange(n, dtype=jnp.float32))
    key = jax.random.key(7)
    exact, _ = jax.jit(fj.RGU())(problem, phi, None)
    v = np.asarray(fj.sample_directions("rademacher", key, b, like=phi), np.float64)
    want = (v @ np.asarray(exact, np.float64)) @ v / b
    scale = float(np.abs(v @ np.asarray(exact, np.float64)).max())  # size of the largest coefficient
    for chunk in (1, 2, None):
        got, aux = jax.jit(fj.FG2U(b, chunk_size=chunk).__call__)(problem, phi, key)
        # float32 round-off of coefficients of size ≤ scale, summed over b directions of unit entries
        np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=50 * U32 * scale)
        assert np.isclose(float(aux.outer_loss), float(jax.jit(fj.RGU())(problem, phi, None)[1].outer_loss))


@pytest.mark.slow
def test_keyed_directions_are_valid_draws_and_estimate_is_exact_in_expectation():
    """Rademacher entries are ±1; Σ_i (∇L·v_i) v_i / b over many directions approaches ∇L (E[vvᵀ] = I)."""
    problem, phi = _problem(n=8)
    lazy = KeyedDirections(get_distribution("rademacher"), jax.random.key(0), 4000, phi)
    v = np.asarray(lazy.all())
    assert set(np.unique(v)) == {-1.0, 1.0}
    cov = v.T @ v / v.shape[0]
    assert np.max(np.abs(cov - np.eye(8))) < 5 * (1 / np.sqrt(4000))  # entries' standard error 1/√b
    exact, _ = jax.jit(fj.RGU())(problem, phi, None)
    est, _ = jax.jit(fj.FG2U(4000, chunk_size=500).__call__)(problem, phi, jax.random.key(0))
    # per coordinate the estimator's std is ≤ ‖∇L‖/√b (Rademacher variance (‖g‖² − g_k²)/b)
    assert np.max(np.abs(np.asarray(est) - np.asarray(exact))) < 5 * float(jnp.linalg.norm(exact)) / np.sqrt(4000)


def test_orthogonal_is_still_drawn_jointly():
    assert drawn_per_direction("rademacher") and not drawn_per_direction("orthogonal")
    problem, phi = _problem(n=8)
    exact, _ = jax.jit(fj.RGU())(problem, phi, None)
    got, _ = jax.jit(fj.FG2U(8, distribution="orthogonal", chunk_size=3).__call__)(problem, phi, jax.random.key(1))
    np.testing.assert_allclose(np.asarray(got), np.asarray(exact), rtol=1e-4, atol=1e-5)  # a full orthogonal block


@pytest.mark.slow
def test_compiled_memory_does_not_grow_with_b_at_fixed_chunk_size():
    n = 20_000
    problem, phi = _problem(num_steps=3, n=n)

    def temp(b: int) -> int:
        fn = jax.jit(fj.FG2U(b, chunk_size=1).__call__)
        return fn.lower(problem, phi, jax.random.key(0)).compile().memory_analysis().temp_size_in_bytes

    t2, t32 = temp(2), temp(32)
    assert t32 - t2 <= 16 * 32, (t2, t32)  # only the O(b) index and mask arrays grow, not O(b × N)
    assert t32 < 16 * n * 4  # far below the 32 × N floats that drawing all directions at once would need


@pytest.mark.parametrize("make_key", [jax.random.key, jax.random.PRNGKey])
def test_packed_rademacher_is_jax_random_rademacher(make_key):
    """The packed draw (an elementwise Threefry fused into the bit packing) reproduces jax.random bit for bit:
    direction i is rademacher(fold_in(key, i), (1, N)), or for N > 16,384 the concatenation of blocks of
    16,384 entries drawn from fold_in(fold_in(key, i), j)."""
    key = make_key(7)
    for n in (37, 40_000):
        like = jnp.zeros((n,), jnp.float32)
        lazy = KeyedDirections(get_distribution("rademacher"), key, 2, like)
        compact = jax.eval_shape(lazy.take_compact, jnp.arange(2))
        assert compact.dtype == jnp.uint32 and compact.shape[1] >= n // 32  # packed: N/32 words a direction
        got = np.asarray(jax.jit(lazy.take)(jnp.arange(2)))
        for i in range(2):
            ki = jax.random.fold_in(key, i)
            if n <= 16_384:
                want = jax.random.rademacher(ki, (1, n), jnp.float32)[0]
            else:
                blocks = [
                    jax.random.rademacher(jax.random.fold_in(ki, j), (1, 16_384), jnp.float32)[0] for j in range(3)
                ]
                want = jnp.concatenate(blocks)[:n]
            np.testing.assert_array_equal(got[i], np.asarray(want))


@pytest.mark.slow
def test_compiled_memory_is_near_the_forward_mode_bound():
    """θ + Z + the outer loss's own temporary (θ − y) is the working set of a forward-mode unroll with b ≥ 2
    chunks of one direction (the estimate accumulates in the output buffer); with b = 1, θ itself lives in the
    output buffer. The directions stay packed (N/8 bytes) and the random bits are never materialised."""
    n = 40_000  # three blocks of random bits
    problem, phi = _problem(num_steps=3, n=n)
    key = jax.random.key(0)

    def temp(fn, *args) -> int:
        return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes

    floats = 4 * n
    one = temp(lambda p, k: fj.FG2U(1, chunk_size=1)(problem, p, k), phi, key)
    four = temp(lambda p, k: fj.FG2U(4, chunk_size=1)(problem, p, k), phi, key)
    assert one <= floats + floats // 8 + 4096, one  # Z (+ packed signs, scalars)
    assert four <= 3 * floats + 4096, four  # θ, Z, θ − y
