"""The same bi-level problems written in fg2u.jax and fg2u.torch give the same meta-gradients.

* Exact hypergradients (RGU, FGU) agree within float32 tolerance: both backends evaluate the same
  float32 arithmetic in a different order, so they differ by a few ulps per operation, accumulated over
  T steps: rtol = 20·T·eps_32 on the gradient's norm.
* FG²U with the same explicit directions (passed to ``with_directions``) gives the same estimate, and so
  do the implicit estimators, FG²U-ZO (central, ε large enough for float32) and TRGU.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
fj = pytest.importorskip("fg2u.jax")

import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import fg2u  # noqa: E402
import fg2u.torch as ft  # noqa: E402

EPS32 = float(np.finfo(np.float32).eps)


def _rel(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# ------------------------------------------------------------------ quadratic


def quadratic_data(num_steps=25):
    rng = np.random.default_rng(0)
    a0 = rng.normal(size=(5, 5))
    a = (a0 @ a0.T / 5 + 0.5 * np.eye(5)).astype(np.float32)
    b = rng.normal(size=(5, 3)).astype(np.float32)
    c = rng.normal(size=(2, 5)).astype(np.float32)
    y = rng.normal(size=2).astype(np.float32)
    phi = rng.normal(size=3).astype(np.float32)
    return a, b, c, y, phi, num_steps


def quadratic_torch():
    a, b, c, y, phi, T = (torch.as_tensor(x) if isinstance(x, np.ndarray) else x for x in quadratic_data())
    return fg2u.UnrolledProblem(
        init=lambda p: torch.zeros(5),
        step=lambda th, p, _: th - 0.1 * (a @ th - b @ p),
        outer_loss=lambda th, p, _: 0.5 * torch.sum((c @ th - y) ** 2) + 0.025 * torch.sum(p**2),
        num_steps=T,
    ), phi


def quadratic_jax():
    a, b, c, y, phi, T = (jnp.asarray(x) if isinstance(x, np.ndarray) else x for x in quadratic_data())
    return fg2u.UnrolledProblem(
        init=lambda p: jnp.zeros(5),
        step=lambda th, p, _: th - 0.1 * (a @ th - b @ p),
        outer_loss=lambda th, p, _: 0.5 * jnp.sum((c @ th - y) ** 2) + 0.025 * jnp.sum(p**2),
        num_steps=T,
    ), phi


PAIRS = [
    ("RGU", lambda m: m.RGU()),
    ("FGU", lambda m: m.FGU()),
    ("RGUCheckpointed", lambda m: m.RGUCheckpointed(segment_length=4)),
    ("TRGU", lambda m: m.TRGU(7)),
    ("Neumann", lambda m: m.Neumann(5, alpha=0.5)),
    ("ConjugateGradient", lambda m: m.ConjugateGradient(5)),
    ("HessianFree", lambda m: m.HessianFree(alpha=10.0)),
]


@pytest.mark.parametrize("name,make", PAIRS, ids=[p[0] for p in PAIRS])
def test_quadratic_deterministic_estimators_agree(name, make):
    tp, tphi = quadratic_torch()
    jp, jphi = quadratic_jax()
    tg, taux = make(ft)(tp, tphi, None)
    jg, jaux = make(fj)(jp, jphi, None)
    assert tg.dtype == torch.float32 and jg.dtype == jnp.float32
    assert _rel(tg, jg) <= 20 * 25 * EPS32, name
    assert float(taux.outer_loss) == pytest.approx(float(jaux.outer_loss), rel=20 * 25 * EPS32)


@pytest.mark.slow
@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
def test_quadratic_fg2u_same_directions(distribution):
    tp, tphi = quadratic_torch()
    jp, jphi = quadratic_jax()
    dirs = ft.sample_directions(distribution, 0, 6, like=tphi)
    tg, _ = ft.FG2U(6, chunk_size=4).with_directions(tp, tphi, dirs)
    jg, _ = fj.FG2U(6, chunk_size=4).with_directions(jp, jphi, jnp.asarray(dirs.numpy()))
    assert _rel(tg, jg) <= 20 * 25 * EPS32
    tz, _ = ft.FG2U_ZO(6, eps=1e-2, scheme="central").with_directions(tp, tphi, dirs)
    jz, _ = fj.FG2U_ZO(6, eps=1e-2, scheme="central").with_directions(jp, jphi, jnp.asarray(dirs.numpy()))
    # the quadratic L makes central differences exact; rounding: u·|L|/ε relative to the estimate
    assert _rel(tz, jz) <= 1e-3


# ------------------------------------------------------------------ small MLP, momentum SGD

N_TRAIN, T_MLP = 12, 8


def mlp_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N_TRAIN, 3)).astype(np.float32)
    y = np.sin(x.sum(1)).astype(np.float32)
    xv = rng.normal(size=(10, 3)).astype(np.float32)
    yv = np.sin(xv.sum(1)).astype(np.float32)
    idx = np.stack([rng.permutation(N_TRAIN)[:6] for _ in range(T_MLP)])
    params = {
        "w1": (rng.normal(size=(3, 8)) / np.sqrt(3)).astype(np.float32),
        "b1": np.zeros(8, np.float32),
        "w2": (rng.normal(size=(8, 1)) / np.sqrt(8)).astype(np.float32),
        "b2": np.zeros(1, np.float32),
    }
    phi = (0.3 * rng.normal(size=N_TRAIN)).astype(np.float32)
    return x, y, xv, yv, idx, params, phi


def _mlp(np_like, params, x):
    return (np_like.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"])[:, 0]


def mlp_torch():
    x, y, xv, yv, idx, params, phi = mlp_data()
    t = torch.as_tensor

    def inner_loss(p, w, batch):
        xb, yb, ib = batch
        return torch.mean(torch.sigmoid(w[ib]) * (_mlp(torch, p, xb) - yb) ** 2)

    init, step = ft.optim_transition(
        inner_loss, ft.optim.momentum(0.1, momentum=0.9), {k: t(v) for k, v in params.items()}
    )
    problem = fg2u.UnrolledProblem(
        init,
        step,
        lambda s, w, b: torch.mean((_mlp(torch, s.params, b[0]) - b[1]) ** 2),
        T_MLP,
        inner_batches=(t(x[idx]), t(y[idx]), t(idx)),
        outer_batch=(t(xv), t(yv)),
    )
    return problem, t(phi)


def mlp_jax():
    x, y, xv, yv, idx, params, phi = mlp_data()

    def inner_loss(p, w, batch):
        xb, yb, ib = batch
        return jnp.mean(jax.nn.sigmoid(w[ib]) * (_mlp(jnp, p, xb) - yb) ** 2)

    init, step = fj.optax_transition(
        inner_loss, optax.sgd(0.1, momentum=0.9), {k: jnp.asarray(v) for k, v in params.items()}
    )
    problem = fg2u.UnrolledProblem(
        init,
        step,
        lambda s, w, b: jnp.mean((_mlp(jnp, s.params, b[0]) - b[1]) ** 2),
        T_MLP,
        inner_batches=(jnp.asarray(x[idx]), jnp.asarray(y[idx]), jnp.asarray(idx)),
        outer_batch=(jnp.asarray(xv), jnp.asarray(yv)),
    )
    return problem, jnp.asarray(phi)


@pytest.fixture(scope="module")
def mlp_pair():
    tp, tphi = mlp_torch()
    jp, jphi = mlp_jax()
    return tp, tphi, jp, jphi


@pytest.mark.slow
@pytest.mark.parametrize("name,make", PAIRS[:2], ids=[p[0] for p in PAIRS[:2]])
def test_mlp_exact_hypergradient_agrees(mlp_pair, name, make):
    tp, tphi, jp, jphi = mlp_pair
    tg, taux = make(ft)(tp, tphi, None)
    jg, jaux = make(fj)(jp, jphi, None)
    assert _rel(tg, jg) <= 20 * T_MLP * EPS32 * 10, name  # ×10: ~10 float32 ops per parameter per step
    assert float(taux.outer_loss) == pytest.approx(float(jaux.outer_loss), rel=20 * T_MLP * EPS32)


@pytest.mark.slow
def test_mlp_fg2u_same_directions(mlp_pair):
    tp, tphi, jp, jphi = mlp_pair
    dirs = ft.sample_directions("rademacher", 3, 4, like=tphi)
    tg, _ = ft.FG2U(4).with_directions(tp, tphi, dirs)
    jg, _ = fj.FG2U(4).with_directions(jp, jphi, jnp.asarray(dirs.numpy()))
    assert _rel(tg, jg) <= 20 * T_MLP * EPS32 * 10
