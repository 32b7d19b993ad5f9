"""Shared fixtures of the core's tests.

1. A guard: no test may leave JAX's float64 switch or torch's default dtype changed.

``jax.config.update("jax_enable_x64", True)`` in one test changes the dtypes every later test sees (in this
process); tests that need float64 use ``with jax.enable_x64(True):`` instead. This fixture turns a leak into a
failure of the test that leaked, with the fix in the message.

2. Backend adapters for tests written once over both backends: the ``side`` fixture (each test runs once per
backend; JAX in float64 for that test only), ``jax_side`` and ``torch_side``. A test gets a :class:`JaxSide` or a :class:`TorchSide` and builds its problem, φ, keys and direction rows through
it, so the same test body checks ``fg2u.jax`` and ``fg2u.torch`` against the same float64 numpy oracle:

* ``side.m`` — the backend module (``fg2u.jax`` / ``fg2u.torch``); ``side.label`` — ``"jax"`` / ``"torch"``;
* ``side.array(x)`` — a float64 backend array; ``side.np(x)`` — back to numpy float64;
* ``side.key(seed)`` — the backend's random key; ``side.fixed(rows)`` — a direction "distribution" returning
  ``rows`` (exact expectations over sign vectors); ``side.fast(fn)`` — ``jax.jit`` in JAX, ``fn`` in torch;
* ``side.linear_problem(a, b, c, y, etas)`` — θ_{t+1} = θ_t − η_t(Aθ_t − Bφ), θ_0 = 0, F = ½‖Cθ_T − y‖², the
  step sizes η_t passed as ``inner_batches`` (T = ``len(etas)``);
* ``side.adam_problem(a, b, c, y, etas, lr)`` — the same inner loss ½ η_t ‖Aw − Bφ‖² minimised by Adam(lr)
  through the backend's optimiser transition (an inner state with an integer step counter).

3. ``make_test_record``: the one factory of schema-2 result records for the records and leaderboard tests (a
fixed template whose fields a test replaces; see the fixture).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _no_leaked_float64():
    yield
    jax = sys.modules.get("jax")
    if jax is not None and jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", False)
        pytest.fail("this test left jax_enable_x64 on for every later test; use `with jax.enable_x64(True):`")
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_default_dtype() != torch.float32:
        torch.set_default_dtype(torch.float32)
        pytest.fail("this test changed torch's default dtype for every later test; restore it in a fixture")


@pytest.fixture
def jax_side():
    """:class:`JaxSide` with float64 on for this test only (``jax.enable_x64`` as a context)."""
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        yield JaxSide()


@pytest.fixture
def torch_side():
    """:class:`TorchSide`."""
    return TorchSide()


@pytest.fixture(params=["jax", "torch"])
def side(request):
    """:class:`JaxSide` (float64 for this test only) and then :class:`TorchSide`: the test runs once per backend."""
    if request.param == "torch":
        yield TorchSide()
        return
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        yield JaxSide()


class Fixed:
    """A direction 'distribution' that always returns the given rows (for exact expectations)."""

    name = "fixed"

    def __init__(self, rows, convert):
        self.rows, self.convert = rows, convert

    def sample(self, ops, key, num_directions, dim, dtype):
        assert self.rows.shape == (num_directions, dim)
        return self.convert(self.rows, dtype)


class JaxSide:
    label = "jax"

    def __init__(self):
        self.m = pytest.importorskip("fg2u.jax")
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp

    def array(self, x):
        return self.jnp.asarray(x)

    def np(self, x):
        return np.asarray(x, np.float64)

    def key(self, seed):
        return self.jax.random.PRNGKey(seed)

    def fixed(self, rows):
        return Fixed(rows, lambda r, dtype: self.jnp.asarray(r, dtype))

    def fast(self, fn):
        return self.jax.jit(fn)

    def linear_problem(self, a, b, c, y, etas):
        import fg2u

        jnp = self.jnp
        a, b, c, y = (jnp.asarray(x) for x in (a, b, c, y))
        return fg2u.UnrolledProblem(
            init=lambda p: jnp.zeros(a.shape[0], p.dtype),
            step=lambda th, p, eta: th - eta * (a @ th - b @ p),
            outer_loss=lambda th, p, _: 0.5 * jnp.sum((c @ th - y) ** 2),
            num_steps=len(etas),
            inner_batches=jnp.asarray(etas),
        )

    def adam_problem(self, a, b, c, y, etas, lr):
        import optax

        import fg2u

        jnp = self.jnp
        a, b, c, y = (jnp.asarray(x) for x in (a, b, c, y))

        def inner_loss(w, p, scale):
            return 0.5 * scale * jnp.sum((a @ w - b @ p) ** 2)

        init, step = self.m.optax_transition(inner_loss, optax.adam(lr, eps_root=1e-8), jnp.zeros(a.shape[1]))
        return fg2u.UnrolledProblem(
            init,
            step,
            lambda s, p, _: 0.5 * jnp.sum((c @ s.params - y) ** 2),
            num_steps=len(etas),
            inner_batches=jnp.asarray(etas),
        )


class TorchSide:
    label = "torch"

    def __init__(self):
        self.m = pytest.importorskip("fg2u.torch")
        import torch

        self.torch = torch

    def array(self, x):
        return self.torch.as_tensor(x)

    def np(self, x):
        return x.detach().numpy().astype(np.float64)

    def key(self, seed):
        return seed

    def fixed(self, rows):
        return Fixed(rows, lambda r, dtype: self.torch.as_tensor(r, dtype=dtype))

    def fast(self, fn):
        return fn

    def linear_problem(self, a, b, c, y, etas):
        import fg2u

        t = self.torch
        a, b, c, y = (t.as_tensor(x) for x in (a, b, c, y))
        return fg2u.UnrolledProblem(
            init=lambda p: t.zeros(a.shape[0], dtype=p.dtype),
            step=lambda th, p, eta: th - eta * (a @ th - b @ p),
            outer_loss=lambda th, p, _: 0.5 * t.sum((c @ th - y) ** 2),
            num_steps=len(etas),
            inner_batches=t.as_tensor(etas),
        )

    def adam_problem(self, a, b, c, y, etas, lr):
        import fg2u

        t = self.torch
        a, b, c, y = (t.as_tensor(x) for x in (a, b, c, y))

        def inner_loss(w, p, scale):
            return 0.5 * scale * t.sum((a @ w - b @ p) ** 2)

        init, step = self.m.optim_transition(inner_loss, self.m.optim.adam(lr), t.zeros(a.shape[1], dtype=t.float64))
        return fg2u.UnrolledProblem(
            init,
            step,
            lambda s, p, _: 0.5 * t.sum((c @ s.params - y) ** 2),
            num_steps=len(etas),
            inner_batches=t.as_tensor(etas),
        )


# ---------------------------------------------------------------------------------- result records (schema 2)
TEST_PROVENANCE_COMMIT = "0123456789abcdef0123456789abcdef01234567"
TEST_TIMESTAMP = "2026-01-01T00:00:00+00:00"


def _test_record_template():
    from fg2u.experiment.provenance import Provenance
    from fg2u.experiment.records import ResultRecord

    provenance = Provenance(
        git_commit=TEST_PROVENANCE_COMMIT,
        dirty=False,
        command=("python", "-m", "test"),
        host="test-host",
        cpu="test cpu",
        accelerator=None,
        versions={"python": "3", "fg2u": "0"},
    )
    return ResultRecord(
        benchmark="vision",
        task="condensation",
        dataset="digits",
        config="smoke",
        estimator="FG2U",
        estimator_spec="fg2u",
        estimator_settings={},
        problem_settings={},
        config_settings={},
        seed=0,
        status="ok",
        metrics={"test_accuracy": 50.0},
        memory=None,
        curve=None,
        details={},
        wall_time_s=1.0,
        device="cpu: test",
        run_id="20260101T000000-test00",
        provenance=provenance,
        timestamp=TEST_TIMESTAMP,
    )


@pytest.fixture(scope="session")
def make_test_record():
    """The one factory of result records for tests (leaderboard, records, regression): ``make_test_record(**fields)``
    is a schema-2 :class:`fg2u.experiment.records.ResultRecord` with ``fields`` replacing a fixed template —
    benchmark ``vision``, task ``condensation``, data set ``digits``, config ``smoke``, estimator ``FG2U``, seed 0,
    ``metrics={"test_accuracy": 50.0}``, empty settings, no memory or curve, ``wall_time_s=1.0``, device
    ``"cpu: test"``, run id ``20260101T000000-test00``, a fixed provenance and timestamp (:data:`TEST_TIMESTAMP`).
    The record's own validation runs on every call (a bad field raises ``ValueError``). No git or clock is
    read, so records are identical across calls and fast to make."""
    import dataclasses

    template = _test_record_template()

    def make(**fields):
        return dataclasses.replace(template, **fields)

    return make
