"""fg2u.jax.sample_directions / JaxOps: pytree shapes, the distributions act on the flat vector, E[vvᵀ] = I."""

import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from fg2u.directions import RandomOps  # noqa: E402
from fg2u.jax import JaxOps, sample_directions  # noqa: E402

PHI = {"w": jnp.zeros((2, 2), jnp.float32), "b": jnp.zeros((2,), jnp.float32)}
N = 6


def _flat(v):
    b = v["w"].shape[0]
    return np.concatenate([np.asarray(v["b"], np.float64), np.asarray(v["w"], np.float64).reshape(b, -1)], 1)


def test_jaxops_is_a_random_ops():
    assert isinstance(JaxOps(), RandomOps)


@pytest.mark.slow
@pytest.mark.parametrize("distribution", ["rademacher", "gaussian", "sphere", "orthogonal"])
def test_second_moment_is_identity_over_the_whole_pytree(distribution):
    m = 6000
    if distribution == "orthogonal":  # one QR per block of N (a Python loop in the core): vmap N-blocks over keys
        keys = jax.random.split(jax.random.key(0), m // N)
        v = jax.jit(jax.vmap(lambda k: sample_directions(distribution, k, N, PHI)))(keys)
        v = jax.tree_util.tree_map(lambda x: x.reshape((m,) + x.shape[2:]), v)
    else:
        v = jax.jit(lambda k: sample_directions(distribution, k, m, PHI))(jax.random.key(0))
    assert v["w"].shape == (m, 2, 2) and v["b"].shape == (m, 2) and v["w"].dtype == jnp.float32
    flat = _flat(v)
    products = flat[:, :, None] * flat[:, None, :]
    stderr = products.std(axis=0, ddof=1) / math.sqrt(m)
    # z = 5 standard errors per entry (normal approximation, union bound over 36 entries: < 2e-5)
    assert np.all(np.abs(products.mean(0) - np.eye(N)) <= 5 * stderr + 1e-5)


@pytest.mark.slow
def test_rademacher_sphere_orthogonal_properties():
    key = jax.random.key(1)
    draw = jax.jit(
        lambda k: [sample_directions(d, k, b, PHI) for d, b in (("rademacher", 5), ("sphere", 5), ("orthogonal", 4))]
    )
    rad, sph, orth = (_flat(v) for v in draw(key))
    assert set(np.unique(rad)) == {-1.0, 1.0}
    np.testing.assert_allclose(np.linalg.norm(sph, axis=1), math.sqrt(N), rtol=1e-5)  # flat norm, not per leaf
    np.testing.assert_allclose(orth @ orth.T, N * np.eye(4), atol=1e-4)
    more = _flat(sample_directions("orthogonal", key, N + 2, PHI))
    np.testing.assert_allclose(more[:N] @ more[:N].T, N * np.eye(N), atol=1e-4)


def test_dtype_follows_phi_and_errors():
    v = sample_directions("gaussian", jax.random.key(0), 3, jnp.zeros(4, jnp.bfloat16))
    assert v.dtype == jnp.bfloat16 and v.shape == (3, 4)
    with pytest.raises(ValueError, match="unknown direction distribution"):
        sample_directions("uniform", jax.random.key(0), 3, PHI)
    with pytest.raises(TypeError, match=r"phi\['n'\] has dtype int32"):
        sample_directions("rademacher", jax.random.key(0), 3, {"n": jnp.arange(3)})
    with pytest.raises(ValueError, match="num_directions"):
        sample_directions("rademacher", jax.random.key(0), 0, PHI)
    with pytest.raises(TypeError, match="PRNG key"):
        sample_directions("rademacher", None, 2, PHI)
