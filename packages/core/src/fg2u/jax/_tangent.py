"""FG²U's forward-mode unroll with directions drawn per chunk, written as one tangent scan.

For a chunk of c directions ``v_1..v_c`` (drawn per chunk from a `KeyedDirections`, or rows of the
caller's own directions, `GivenDirections`) this runs

    θ_0 = init(φ),  Z_0 = ∂init/∂φ · v,
    (θ_{t+1}, Z_{t+1}) = (Φ(θ_t, φ, x_t), ∂_θΦ · Z_t + ∂_φΦ · v)         (one ``jax.jvp`` of the step,
                                                                           vmapped over the c tangents)
    c_j = ∂_θF · Z_T^j + ∂_φF · v_j = ∇L(φ)·v_j,

and adds ``(c_j / b) v_j`` to the estimate. Unlike ``jax.jvp`` of the whole objective (which hoists the
tangent ``v`` of φ out of the scan as a full-size constant), the directions stay in their compact form
(Rademacher: sign bits packed 32 to a word, N/8 bytes) and are expanded *inside* each step, where XLA fuses
the expansion into the tangent update. The working set of a chunk is θ, the c tangents Z, the c compact
directions and one step's temporaries (for steps made of elementwise maths, the primal step is evaluated
after the tangent step so that XLA updates θ in place instead of copying it; see `_cheap_step`).
The primal θ_t is computed once per chunk and shared by its c tangents. The outer loss F(θ_T, φ) is
differentiated once per chunk of c ≥ 2 directions, by a reverse pass (∇_θF, ∇_φF, dotted with each Z_T^j and
v_j), not by c jvps: its batch (often far larger than an inner step's, e.g. a validation batch of hundreds of
examples against a few training examples per step) then goes through the model once, not c times at once —
6–7× less compiled memory and ≈ 20 % less time when the outer batch dominates a chunk's working set. A chunk
of one direction keeps the jvp (no θ-sized cotangent).

Measured on ``benchmarks/bench_core.py`` (N = 10⁵, chunk_size = 1, XLA compiled temp bytes): 1.04× a plain
unroll at b = 1 (θ lives in the output buffer, Z is the only N-sized temporary) and 3.00× for every b ≥ 2
(θ, Z and the outer loss's own N-sized temporary θ_T − y; the estimate accumulates in the output buffer).

Summing ``Σ_j w_j v_j`` over a chunk (see `tangent_forward_sum`): packed Rademacher chunks of at most
``_UNROLLED_SUM_MAX_CHUNK`` (32) directions add the c terms one by one, each unpacked where it is used, so
no c × N expansion is ever alive (4.1× a plain unroll at b = c = 4 against 8.1× for a reduction); larger
chunks, and float (Gaussian / sphere) directions, use one reduction over the chunk axis. The unrolled sum
of c terms makes XLA's compile time grow about quadratically in c (4 s at c = 600, 11 s at c = 1,200, and
460 s for the 4 chunks of 6,000 in ``tests/test_jax_unbiased.py``), which is why it is kept to small
chunks, where the memory matters; the reduction compiles in about a second at c = 6,000. Both sums add the
same directions — the draw (`KeyedDirections.take_compact`) does not depend on the chunk size — so
for a given key the estimate is the same whichever path is taken, up to the float summation order.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend.core import jaxprs_in_params

from ._pytree import check_same_structure, ravel, split_float
from .directions import GivenDirections, KeyedDirections
from .unroll import _scalar

PyTree = Any

__all__ = ["tangent_forward_sum"]

# packed (Rademacher) chunks of up to this many directions sum Σ_j w_j v_j term by term (lowest memory);
# larger chunks and float directions by one reduction (an unrolled sum's compile time is ~quadratic in c)
_UNROLLED_SUM_MAX_CHUNK = 32


def _float_leaves(tree: PyTree) -> list:
    return split_float(tree)[0]


# primitives whose recomputation costs real work (contractions, factorisations, loops, host callbacks)
_EXPENSIVE = frozenset(
    {
        "dot_general",
        "conv_general_dilated",
        "fft",
        "cholesky",
        "triangular_solve",
        "lu",
        "qr",
        "svd",
        "eigh",
        "eig",
        "schur",
        "hessenberg",
        "tridiagonal",
        "tridiagonal_solve",
        "while",
        "scan",
        "cond",
        "pure_callback",
        "io_callback",
        "custom_call",
    }
)


def _expensive(jaxpr: Any) -> bool:
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in _EXPENSIVE:
            return True
        for sub in jaxprs_in_params(eqn.params):
            if _expensive(getattr(sub, "jaxpr", sub)):
                return True
    return False


def _after(floats: list, z: list) -> list:
    """``floats`` unchanged, but data-dependent on every leaf of ``z`` (computed first).

    Each leaf gets ``x[0…0] = x[0…0]`` through a ``dynamic_update_slice`` whose index is 0 computed from
    one element of every ``z`` leaf (its float32 bits shifted right by 31, then by 1: always 0). XLA
    therefore schedules the computations of ``z`` (which read ``floats``) before anything that reads the
    result, so a step ``θ → Φ(θ)`` can then overwrite θ in place. (``lax.optimization_barrier`` does not
    achieve this on XLA:CPU: it materialises a copy.) Values are untouched, bit for bit.
    """
    firsts = [lax.bitcast_convert_type(jnp.ravel(zl)[0].astype(jnp.float32), jnp.uint32) for zl in z if zl.size]
    if not firsts:
        return floats
    bits = firsts[0]
    for other in firsts[1:]:
        bits = bits ^ other
    zero = ((bits >> jnp.uint32(31)) >> jnp.uint32(1)).astype(jnp.int32)
    out = []
    for x in floats:
        if x.ndim == 0 or x.size == 0:
            out.append(x)
            continue
        index = (zero,) * x.ndim
        out.append(lax.dynamic_update_slice(x, lax.dynamic_slice(x, index, (1,) * x.ndim), index))
    return out


def _cheap_step(problem: Any, theta: PyTree, phi: PyTree) -> bool:
    """Whether one inner step is cheap to compute twice: only elementwise maths and reductions (XLA fuses
    those and recomputes them inside each fusion anyway). Then the tangent scan recomputes the primal step
    after the tangent step so that θ is updated in place; a step with contractions (an MLP, a convolution)
    or loops keeps the single jvp (one primal evaluation per step, one extra θ-sized copy)."""
    batch = None
    if problem.inner_batches is not None:
        batch = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), problem.inner_batches)
    spec = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), (theta, phi))
    jaxpr = jax.make_jaxpr(lambda th, p, bt: problem.step(th, p, bt))(*spec, batch)
    return not _expensive(jaxpr.jaxpr)


def _chunk_coefficients(
    problem: Any, phi: PyTree, directions: KeyedDirections | GivenDirections, compact: jax.Array
) -> tuple:
    """``(c_j)_j`` (shape ``(c,)``) and ``L(φ)`` for the compact directions ``compact`` (leading axis c)."""
    _, unravel = ravel(phi)

    def tangents(anchor: Any = None) -> PyTree:
        # the chunk's directions as pytrees like φ (leading axis c); called inside each step so that XLA
        # expands the packed signs where they are used instead of keeping c × N floats alive. ``anchor``
        # (a loop-carried value) ties the expansion to the iteration through an optimisation barrier, or
        # XLA's loop-invariant code motion would hoist it out of the scan as a full-size buffer.
        words = compact if anchor is None else lax.optimization_barrier((compact, anchor))[0]
        return jax.vmap(lambda x: unravel(directions.expand_flat(x)))(words)

    def init_tangent(v: PyTree) -> list:
        return _float_leaves(jax.jvp(problem.init, (phi,), (v,))[1])

    theta0 = problem.init(phi)
    z0 = jax.vmap(init_tangent)(tangents())
    recompute_primal = _cheap_step(problem, theta0, phi)

    def body(carry: tuple, batch: Any) -> tuple[tuple, None]:
        theta, z = carry
        floats, rebuild = split_float(theta)

        def step(fl: list, p: PyTree) -> PyTree:
            return problem.step(rebuild(fl), p, batch)

        def one(zj: list, vj: PyTree) -> tuple[PyTree, list]:
            new, dnew = jax.jvp(step, (floats, phi), (zj, vj))
            return new, _float_leaves(dnew)

        if not recompute_primal:
            new_theta, new_z = jax.vmap(one, out_axes=(None, 0))(z, tangents(z))
        else:
            # Z_{t+1} first (it reads θ_t), then θ_{t+1} from θ_t made to depend on Z_{t+1}: XLA can then
            # overwrite θ_t in place instead of copying it (it cannot order the two outputs of one jvp)
            new_z = jax.vmap(lambda zj, vj: one(zj, vj)[1])(z, tangents(z))
            new_theta = step(_after(floats, new_z), phi)
        check_same_structure(new_theta, theta, "the state returned by step", "the state passed to step", phi=phi)
        return (new_theta, new_z), None

    (theta_t, z_t), _ = lax.scan(body, (theta0, z0), problem.inner_batches, length=problem.num_steps)
    floats, rebuild = split_float(theta_t)

    def outer(fl: list, p: PyTree) -> jax.Array:
        return _scalar(problem.outer_loss(rebuild(fl), p, problem.outer_batch), "outer_loss")

    if compact.shape[0] == 1:
        # one direction: a jvp of F (no θ-sized cotangent, nothing of the outer pass kept)
        loss, coeff = jax.jvp(
            outer, (floats, phi), ([z[0] for z in z_t], jax.tree_util.tree_map(lambda v: v[0], tangents()))
        )
        return coeff[None], loss
    # c ≥ 2 directions: ∇_θF(θ_T) and ∇_φF by one reverse pass over the outer loss, dotted with each tangent —
    # one pass over the outer batch instead of c forward-mode passes (the outer batch, e.g. a real-data batch
    # far larger than the inner one, would otherwise be pushed through the model c times at once)
    loss, (g_theta, g_phi) = jax.value_and_grad(outer, argnums=(0, 1))(floats, phi)
    g_phi_flat = ravel(g_phi)[0]

    def coefficient(zj: list, compact_j: jax.Array) -> jax.Array:
        dot = sum((jnp.vdot(g, z) for g, z in zip(g_theta, zj)), jnp.zeros((), loss.dtype))
        return dot + jnp.vdot(g_phi_flat, directions.expand_flat(compact_j).astype(g_phi_flat.dtype))

    return jax.vmap(coefficient)(z_t, compact), loss


def tangent_forward_sum(
    problem: Any, phi: PyTree, directions: KeyedDirections | GivenDirections, chunk_size: int | None, scale: float
) -> tuple[PyTree, jax.Array]:
    """``(scale · Σ_i (∇L·v_i) v_i, L(φ))`` over the ``b`` directions, ``chunk_size`` at a time (keyed
    directions are drawn per chunk, given ones read per chunk).

    Two passes over the chunks (a ``lax.scan`` each when there are several): the first runs the tangent
    unrolls and keeps only the b coefficients ``∇L·v_i``; the second draws each chunk's directions again
    (the same ``(key, i)`` draws) and sums ``scale · (∇L·v_i) v_i`` into its carry, which is the result.
    So no θ-sized accumulator is alive during the unrolls and the second pass's carry is the output
    buffer, at the price of drawing every direction twice (cheap next to T inner steps). With a single
    chunk the directions are drawn once. When ``b`` is not a multiple of ``chunk_size`` the last chunk's
    extra directions get weight zero.

    A chunk's ``Σ_j w_j v_j`` is summed term by term for packed Rademacher directions when
    ``c ≤ _UNROLLED_SUM_MAX_CHUNK`` (= 32; no c × N expansion alive) and by one reduction over the chunk
    axis otherwise (compile time independent of c). The directions, hence the estimate for a key, are the
    same either way, up to float summation order.
    """
    b = directions.num_directions
    c = b if chunk_size is None else min(int(chunk_size), b)
    n = -(-b // c)
    indices = jnp.arange(n * c).reshape(n, c)
    mask = indices < b
    flat, unravel = ravel(phi)

    def weighted_sum(compact: jax.Array, weights: jax.Array, acc: jax.Array | None) -> jax.Array:
        if not directions.packed or c > _UNROLLED_SUM_MAX_CHUNK:
            # float directions, and packed ones in large chunks: one reduction over the chunk axis (an
            # unrolled sum of c terms makes XLA's compile time grow quadratically in c: minutes at c = 6,000)
            expanded = jax.vmap(directions.expand_flat)(compact)
            reduced = jnp.sum(weights.astype(flat.dtype)[:, None] * expanded, axis=0)
            return reduced if acc is None else acc + reduced
        # small chunks: c terms added one by one, each expanded where it is used (XLA fuses the chain and
        # keeps no c × N expansion alive; a reduction over the chunk axis materialises it when the chunk's
        # directions are also expanded for the outer loss's jvp)
        total = acc
        for j in range(c):
            update = weights[j].astype(flat.dtype) * directions.expand_flat(compact[j])
            total = update if total is None else total + update
        assert total is not None  # c ≥ 1
        return total

    def coefficients(idx: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _chunk_coefficients(problem, phi, directions, directions.take_compact(idx))

    if n == 1:
        compact = directions.take_compact(indices[0])
        coeffs, loss = _chunk_coefficients(problem, phi, directions, compact)
        weights = jnp.where(mask[0], coeffs * scale, 0)
        return unravel(weighted_sum(compact, weights, None)), loss

    def first_pass(_: Any, idx: jax.Array) -> tuple[Any, tuple[jax.Array, jax.Array]]:
        return None, coefficients(idx)

    _, (coeffs, losses) = lax.scan(first_pass, None, indices)
    weights = jnp.where(mask, coeffs * scale, 0)

    def second_pass(acc: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        idx, w = xs
        return weighted_sum(directions.take_compact(idx), w, acc), None

    total, _ = lax.scan(second_pass, jnp.zeros_like(flat), (indices, weights))
    return unravel(total), losses[-1]
