"""FG²U-ZO: finite-difference error vs ε is O(ε) (forward) and O(ε²) (central), in float64.

With the same directions, FG²U-ZO differs from FG²U only by the finite-difference error of each
directional derivative: forward (L(φ+εv) − L(φ))/ε = ∇L·v + ε/2·vᵀ∇²Lv + O(ε²), central
(L(φ+εv) − L(φ−εv))/(2ε) = ∇L·v + ε²/6·∇³L[v,v,v] + O(ε⁴). On a grid of ε where the leading term
dominates (and round-off ε₆₄|L|/ε ≈ 1e-14 is negligible), log‖ZO − FG²U‖ against log ε has slope 1 and 2.
The next Taylor term changes the local slope by at most its ratio to the leading term, which on the chosen
grid (ε ≤ 0.05) is below 0.15 for forward and 0.2 for central differences.
"""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from fg2u import BlackBoxProblem, UnrolledProblem  # noqa: E402
from fg2u.jax import FG2U, FG2U_ZO, RGU  # noqa: E402


def _unrolled(dtype):
    w = jnp.asarray(np.random.default_rng(0).normal(size=(3, 3)) / 2, dtype)

    def step(th, phi, _):
        return jnp.tanh(w @ th + phi) * 0.8 + 0.2 * th

    return UnrolledProblem(
        lambda phi: jnp.ones(3, dtype) * 0.1, step, lambda th, phi, _: jnp.sum(jnp.sin(2 * th)) + jnp.sum(phi**3), 8
    )


def _blackbox(dtype):
    data = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)), dtype)
    return BlackBoxProblem(lambda phi, d: jnp.sum(jnp.exp(0.5 * d @ phi)) + jnp.prod(jnp.cos(phi)), data=data)


def _slope(eps, err):
    return np.polyfit(np.log(eps), np.log(err), 1)[0]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["unrolled", "blackbox"])
def test_error_order_in_eps(kind):
    with jax.enable_x64(True):
        prob = _unrolled(jnp.float64) if kind == "unrolled" else _blackbox(jnp.float64)
        phi = jnp.array([0.3, -0.4, 0.2], jnp.float64)
        dirs = jnp.asarray(np.random.default_rng(2).choice([-1.0, 1.0], size=(4, 3)))
        if kind == "unrolled":
            exact, _ = jax.jit(FG2U().with_directions)(prob, phi, dirs)
        else:  # the same formula with the exact gradient of the black box (available here for testing)
            g = jax.grad(lambda p: prob.objective(p, prob.data))(phi)
            exact = (dirs @ g) @ dirs / 4
        grid = np.geomspace(0.05, 5e-4, 6)

        def errors(scheme):
            out = []
            for eps in grid:
                zo, aux = jax.jit(FG2U_ZO(eps=float(eps), scheme=scheme).with_directions)(prob, phi, dirs)
                assert zo.dtype == jnp.float64
                out.append(float(jnp.linalg.norm(zo - exact)))
            return np.array(out)

        fwd, cen = errors("forward"), errors("central")
    assert abs(_slope(grid, fwd) - 1) <= 0.15, fwd
    assert abs(_slope(grid, cen) - 2) <= 0.2, cen
    assert np.all(cen < fwd)


@pytest.mark.slow
def test_aux_loss_and_chunking():
    prob = _unrolled(jnp.float32)
    phi = jnp.array([0.3, -0.4, 0.2])
    key = jax.random.key(0)
    _, rgu_aux = jax.jit(RGU().__call__)(prob, phi, None)
    g_f, aux_f = jax.jit(FG2U_ZO(num_directions=5, eps=1e-2).__call__)(prob, phi, key)
    assert float(aux_f.outer_loss) == pytest.approx(float(rgu_aux.outer_loss), rel=1e-6)  # forward: L(φ) itself
    g_c, aux_c = jax.jit(FG2U_ZO(num_directions=5, eps=1e-2, scheme="central").__call__)(prob, phi, key)
    # central: the mean of L(φ ± εv) = L(φ) + O(ε²‖v‖²)
    assert float(aux_c.outer_loss) == pytest.approx(float(rgu_aux.outer_loss), abs=1e-3 * 3 * 10)
    dirs = jax.random.rademacher(key, (5, 3), jnp.float32)
    for scheme in ("forward", "central"):
        one, aux1 = jax.jit(FG2U_ZO(eps=1e-2, scheme=scheme).with_directions)(prob, phi, dirs)
        two, aux2 = jax.jit(FG2U_ZO(eps=1e-2, scheme=scheme, chunk_size=2).with_directions)(prob, phi, dirs)
        np.testing.assert_allclose(np.asarray(two), np.asarray(one), rtol=1e-5, atol=1e-6)  # padded last chunk
        assert float(aux2.outer_loss) == pytest.approx(float(aux1.outer_loss), rel=1e-6)  # padding masked out
