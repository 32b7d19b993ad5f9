"""Direction sampling on JAX: [`JaxOps`][fg2u.jax.JaxOps] implements
[`fg2u.directions.RandomOps`][fg2u.directions.RandomOps]; [`sample_directions`][fg2u.jax.sample_directions] draws b
directions at once; `KeyedDirections` draws them on demand, a chunk at a time, direction i from ``fold_in(key, i)``
(Rademacher signs packed 32 to a word), and `GivenDirections` puts the caller's own directions behind the same interface
— what the FG²U kernels read (`fg2u.jax._chunks`, `fg2u.jax._tangent`)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from fg2u.directions import DirectionDistribution, Gaussian, Rademacher, Sphere, _check_sizes, get_distribution

from ._pytree import check_float_tree, ravel

PyTree = Any

__all__ = ["JaxOps", "sample_directions", "check_key", "KeyedDirections", "GivenDirections", "drawn_per_direction"]


class JaxOps:
    """[`fg2u.directions.RandomOps`][fg2u.directions.RandomOps] on ``jax.random``; ``key`` is a JAX PRNG key (typed or
    raw)."""

    def split(self, key: Any, num: int) -> list:
        return list(jax.random.split(key, num))

    def normal(self, key: Any, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.normal(key, shape, dtype)

    def rademacher(self, key: Any, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.rademacher(key, shape, dtype)

    def row_norms(self, x: jax.Array) -> jax.Array:
        return jnp.linalg.norm(x, axis=1, keepdims=True)

    def orthonormal_rows(self, x: jax.Array) -> jax.Array:
        """``(..., b, N) -> (..., b, N)`` Haar-orthonormal rows (batched over leading axes)."""
        q, r = jnp.linalg.qr(jnp.swapaxes(x, -1, -2))  # (..., N, b) with orthonormal columns
        diag = jnp.diagonal(r, axis1=-2, axis2=-1)
        signs = jnp.where(diag < 0, -1.0, 1.0).astype(q.dtype)
        return jnp.swapaxes(q * signs[..., None, :], -1, -2)

    def concatenate(self, xs: list) -> jax.Array:
        return jnp.concatenate(xs, axis=0)


def check_key(key: Any, who: str) -> None:
    """A random estimator needs a JAX key."""
    if key is None:
        raise TypeError(f"{who} is randomised: pass a JAX PRNG key, e.g. jax.random.key(0), not None")
    dtype = getattr(key, "dtype", None)
    if dtype is None or not (jnp.issubdtype(dtype, jax.dtypes.prng_key) or dtype == jnp.uint32):
        raise TypeError(
            f"{who} needs a JAX PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), "
            f"got {type(key).__name__}: {key!r}"
        )


# distributions whose directions are i.i.d.: one independent draw per direction has the same law as a joint
# draw of b (OrthogonalBlocks couples the directions of a block, so it is drawn jointly)
_PER_DIRECTION = (Rademacher, Gaussian, Sphere)
_BLOCK = 16_384  # entries per random-bit block of one direction


def drawn_per_direction(distribution: str | DirectionDistribution) -> bool:
    """Whether `KeyedDirections` draws this distribution direction by direction."""
    return isinstance(get_distribution(distribution), _PER_DIRECTION)


@dataclasses.dataclass(frozen=True)
class KeyedDirections:
    """``num_directions`` random directions like ``like`` (φ), drawn on demand: direction ``i`` is
    ``distribution.sample(JaxOps(), fold_in(key, i), 1, N)[0]`` unflattened like φ; when N exceeds
    16,384 the entries are drawn in blocks of 16,384, block j from ``fold_in(fold_in(key, i), j)`` (the
    sphere normalises the whole Gaussian vector), so that drawing one direction needs no more than a
    block's worth of random-bit temporaries.

    Only for i.i.d. distributions (`drawn_per_direction`). `take` draws any subset of indices
    (inside a jitted scan over chunks: O(chunk × N) memory); `all` draws them all, identically.
    `take_compact` / `expand` split a draw into a compact form and its expansion: Rademacher
    signs are kept packed 32 to a ``uint32`` word (N/8 bytes a direction), and with JAX's default
    (partitionable Threefry) keys they are computed by an elementwise Threefry-2x32 that XLA fuses into
    the packing — the same bits as ``jax.random.rademacher`` (tested), without its N-sized temporaries.
    Other keys, ``jax_threefry_partitionable=False`` or x64 draw with ``jax.random.rademacher`` and pack
    its signs: either way direction i is the same for a given key, whatever the chunk size or the way the
    FG²U kernel sums a chunk (``fg2u.jax._tangent.tangent_forward_sum``).
    """

    distribution: DirectionDistribution
    key: Any
    num_directions: int
    like: PyTree

    @property
    def packed(self) -> bool:
        """Whether `take_compact` stores the directions as packed sign bits (Rademacher)."""
        return isinstance(self.distribution, Rademacher)

    def take_compact(self, indices: jax.Array) -> jax.Array:
        """The directions ``indices`` (1-D int array) in compact form, leading axis ``len(indices)``.

        Rademacher: the signs packed 32 to a ``uint32`` word, ``(c, ceil(N / 32))`` words (entry k of a
        direction is −1 where bit ``k % 32`` of word ``k // 32`` is set) — N/8 bytes a direction instead
        of 4N, and a tangent unroll can unpack them inside every step (fused, nothing of size N stored).
        Gaussian / Sphere: the flat float vector, ``(c, N)``. `expand` turns either into pytrees like φ;
        ``expand(take_compact(i)) == take(i)``.
        """
        flat, _ = ravel(self.like)
        dist, ops, n = self.distribution, JaxOps(), flat.size
        blocks = -(-n // _BLOCK)
        packed = self.packed

        if packed and _fused_threefry_ok(self.key):
            # the same bits computed by an elementwise Threefry that XLA fuses into the packing: no
            # N-sized random-bit temporaries (jax.random's CPU lowering loops over rounds with them)
            return jax.vmap(lambda i: _packed_rademacher(jax.random.fold_in(self.key, i), n, blocks))(indices)

        def finish(entries: jax.Array) -> jax.Array:
            # Rademacher entries are drawn exactly as before (jax.random.rademacher) and only their signs kept
            return _pack_signs(entries < 0) if packed else entries

        def one(i: jax.Array) -> jax.Array:
            key = jax.random.fold_in(self.key, i)
            if blocks == 1:
                return finish(dist.sample(ops, key, 1, n, flat.dtype)[0])
            # the N entries in blocks of _BLOCK, block j from fold_in(key_i, j): the random-bit generator's
            # temporaries are those of one block, not of N entries (the entries stay i.i.d.)
            base = Gaussian() if isinstance(dist, Sphere) else dist
            v = lax.map(
                lambda j: finish(base.sample(ops, jax.random.fold_in(key, j), 1, _BLOCK, flat.dtype)[0]),
                jnp.arange(blocks),
            ).reshape(-1)
            if packed:
                return v  # blocks × _BLOCK / 32 words; entries ≥ N are ignored by expand
            v = v[:n]
            if isinstance(dist, Sphere):
                v = v * (jnp.sqrt(jnp.asarray(n, flat.dtype)) / jnp.linalg.norm(v))
            return v

        return jax.vmap(one)(indices)

    def expand_flat(self, compact: jax.Array) -> jax.Array:
        """One direction's compact form (no leading axis) → the flat ``(N,)`` vector in φ's flat dtype."""
        flat, _ = ravel(self.like)
        if not self.packed:
            return compact
        return _unpack_signs(compact, flat.size, flat.dtype)

    def expand(self, compact: jax.Array) -> PyTree:
        """Compact directions with a leading axis c → a pytree like φ with a leading axis c."""
        _, unravel = ravel(self.like)
        return jax.vmap(lambda x: unravel(self.expand_flat(x)))(compact)

    def take(self, indices: jax.Array) -> PyTree:
        """The directions ``indices`` (1-D int array), as a pytree like φ with a leading axis ``len(indices)``."""
        return self.expand(self.take_compact(indices))

    def all(self) -> PyTree:
        return self.take(jnp.arange(self.num_directions))


@dataclasses.dataclass(frozen=True)
class GivenDirections:
    """Directions the caller drew (``flat``: ``(b, N)``, row i = v_i flattened like φ) behind the interface of
    `KeyedDirections` that the tangent scan reads (``take_compact`` / ``expand_flat``), so that explicit
    directions (``FG2U.with_directions``, orthogonal blocks, control variates) take the same path as keyed ones.
    Indices ≥ b (the padding of a last, partial chunk) read row b − 1; their weights are zero."""

    flat: jax.Array

    @property
    def num_directions(self) -> int:
        return int(self.flat.shape[0])

    @property
    def packed(self) -> bool:
        return False

    def take_compact(self, indices: jax.Array) -> jax.Array:
        """Rows ``indices`` of ``flat``: ``(len(indices), N)``."""
        return self.flat[jnp.minimum(indices, self.num_directions - 1)]

    def expand_flat(self, compact: jax.Array) -> jax.Array:
        return compact


def _pack_signs(negative: jax.Array) -> jax.Array:
    """``(m,)`` bool → ``(ceil(m / 32),)`` uint32, bit ``k % 32`` of word ``k // 32`` = ``negative[k]``."""
    m = negative.shape[0]
    words = -(-m // 32)
    bits = jnp.pad(negative.astype(jnp.uint32), (0, words * 32 - m)).reshape(words, 32)
    # 32 shifted columns OR-ed together: one elementwise fusion (a reduce over the short axis is much slower)
    packed = bits[:, 0]
    for k in range(1, 32):
        packed = packed | (bits[:, k] << jnp.uint32(k))
    return packed


def _fused_threefry_ok(key: Any) -> bool:
    """Whether `_packed_rademacher` reproduces ``jax.random.rademacher`` for this key: a Threefry key,
    partitionable bits (JAX's default) and 32-bit floats (with x64, Bernoulli draws 64-bit uniforms)."""
    try:
        impl = str(jax.random.key_impl(key))
    except Exception:  # pragma: no cover - unusual key types take the generic path
        return False
    return (
        impl == "threefry2x32"
        and bool(getattr(jax.config, "jax_threefry_partitionable", False))
        and jnp.dtype(jnp.result_type(float)) == jnp.float32
    )


def _rotl(x: jax.Array, r: int) -> jax.Array:
    return (x << jnp.uint32(r)) | (x >> jnp.uint32(32 - r))


def _threefry2x32(k1: jax.Array, k2: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 (20 rounds), elementwise and unrolled — the hash of ``jax.random`` (``threefry2x32_p``)."""
    rotations = ((13, 15, 26, 6), (17, 29, 16, 24))
    ks = (k1, k2, k1 ^ k2 ^ jnp.uint32(0x1BD11BDA))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in rotations[i % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r) ^ x0
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + jnp.uint32(i + 1)
    return x0, x1


@functools.partial(jax.jit, static_argnums=(1, 2))  # one compiled kernel when called eagerly (inlined under jit)
def _packed_rademacher(key: Any, n: int, blocks: int) -> jax.Array:
    """The packed signs of ``jax.random.rademacher(key, (1, n))`` (one block) or of its blocks of ``_BLOCK``
    entries drawn from ``fold_in(key, j)``: entry m of a block is −1 iff the top bit of the 32-bit word
    ``x0 ^ x1`` of ``threefry2x32(block key, (0, m))`` is set (uniform < 0.5 ⟺ that bit is 0)."""
    if blocks == 1:
        keys = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
        keys = jnp.asarray(keys, jnp.uint32).reshape(1, 2)
        per_block = -(-n // 32)
    else:
        sub = jax.vmap(lambda j: jax.random.fold_in(key, j))(jnp.arange(blocks))
        keys = jax.random.key_data(sub) if jnp.issubdtype(sub.dtype, jax.dtypes.prng_key) else sub
        keys = jnp.asarray(keys, jnp.uint32).reshape(blocks, 2)
        per_block = _BLOCK // 32
    k1, k2 = keys[:, :1, None], keys[:, 1:, None]  # (blocks, 1, 1): broadcast over the block's entries
    shape = (keys.shape[0], per_block, 32)
    # the counters are made key-dependent (+ a zero computed from the key's bits: its top bit shifted out),
    # or XLA hoists them out of the scan over chunks as loop-invariant constants and keeps them alive
    zero = (k1 >> jnp.uint32(31)) >> jnp.uint32(1)
    entry = (lax.broadcasted_iota(jnp.uint32, shape, 1) + zero) * jnp.uint32(32) + lax.broadcasted_iota(
        jnp.uint32, shape, 2
    )
    x0, x1 = _threefry2x32(k1, k2, jnp.zeros_like(entry), entry)
    bits = ((x0 ^ x1) >> jnp.uint32(31)) << lax.broadcasted_iota(jnp.uint32, shape, 2)
    # one reduction over the 32 bits of a word, the hash fused into it: no (N,) temporaries
    words = lax.reduce(bits, jnp.uint32(0), lax.bitwise_or, (2,))
    return words.reshape(-1)


def _unpack_signs(words: jax.Array, n: int, dtype: Any) -> jax.Array:
    """The inverse of `_pack_signs` as ±1 entries: ``(W,)`` uint32 → ``(n,)`` of ``dtype`` (n ≤ 32 W)."""
    bits = (words[:, None] >> jnp.arange(32, dtype=jnp.uint32)) & jnp.uint32(1)
    return (1 - 2 * bits.reshape(-1)[:n].astype(dtype)).astype(dtype)


def sample_directions(distribution: str | DirectionDistribution, key: Any, num_directions: int, like: PyTree) -> PyTree:
    """``num_directions`` random tangents with ``E[v vᵀ] = I``, as a pytree like ``like`` with a leading axis ``b``.

    Directions are drawn flat, ``(b, N)`` with ``N`` the total number of entries of ``like``, through
    [`fg2u.directions`][fg2u.directions] (so ``"sphere"`` and ``"orthogonal"`` act on the whole vector, not per leaf),
    then unflattened leaf by leaf. i.i.d. distributions (Rademacher, Gaussian, Sphere) draw direction ``i``
    from ``fold_in(key, i)`` — as the FG²U estimators do chunk by chunk, so ``FG2U(b)(problem, φ, key)``
    equals ``FG2U(b).with_directions(problem, φ, sample_directions(dist, key, b, φ))`` for every
    ``chunk_size``; orthogonal blocks are drawn jointly from ``key``.
    """
    dist = get_distribution(distribution)
    check_float_tree(like, "phi")
    check_key(key, "sample_directions")
    flat, unravel = ravel(like)
    if drawn_per_direction(dist):
        _check_sizes(num_directions, flat.size)
        return KeyedDirections(dist, key, num_directions, like).all()
    vs = dist.sample(JaxOps(), key, num_directions, flat.size, flat.dtype)
    return jax.vmap(unravel)(vs)
