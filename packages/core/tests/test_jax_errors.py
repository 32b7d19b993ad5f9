"""fg2u.jax: clear errors for bad input, the NaN/inf check, jit == eager, TwoPhase, pytree registration, flax."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from fg2u import Aux, BlackBoxProblem, UnrolledProblem  # noqa: E402
from fg2u.jax import (  # noqa: E402
    FG2U,
    FG2U_ZO,
    FGU,
    RGU,
    TRGU,
    ConjugateGradient,
    HessianFree,
    Neumann,
    RGUCheckpointed,
    TwoPhase,
    meta_objective,
    unroll,
)

A = jnp.array([[2.0, 0.5], [0.5, 1.0]])


def _problem(num_steps=5, step=None, outer=None, batches=None):
    step = step or (lambda th, phi, b: th - 0.1 * (A @ th - phi["x"] - (0.0 if b is None else b)))
    outer = outer or (lambda th, phi, _: 0.5 * jnp.sum(th**2) + jnp.sum(phi["x"]) ** 2)
    return UnrolledProblem(lambda phi: jnp.zeros(2), step, outer, num_steps, inner_batches=batches)


PHI = {"x": jnp.array([1.0, -0.5])}
KEY = jax.random.key(0)


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: FG2U(num_directions=0), ValueError, "num_directions"),
        (lambda: FG2U(num_directions=2.5), TypeError, "num_directions"),
        (lambda: FG2U(chunk_size=0), ValueError, "chunk_size"),
        (lambda: FG2U(distribution="cauchy"), ValueError, "unknown direction distribution"),
        (lambda: FG2U_ZO(eps=0.0), ValueError, "eps"),
        (lambda: FG2U_ZO(eps=-1e-3), ValueError, "eps"),
        (lambda: FG2U_ZO(eps=float("nan")), ValueError, "eps"),
        (lambda: FG2U_ZO(scheme="backward"), ValueError, "scheme"),
        (lambda: FG2U_ZO(num_directions=0), ValueError, "num_directions"),
        (lambda: TRGU(0), ValueError, "truncation"),
        (lambda: RGUCheckpointed(0), ValueError, "segment_length"),
        (lambda: Neumann(-1), ValueError, "num_terms"),
        (lambda: Neumann(3, alpha=0.0), ValueError, "alpha"),
        (lambda: ConjugateGradient(0), ValueError, "num_iterations"),
        (lambda: HessianFree(alpha=-1.0), ValueError, "alpha"),
        (lambda: TwoPhase(RGU(), 3, 1), TypeError, "second"),
        (lambda: TwoPhase(RGU(), RGU(), -1), ValueError, "switch_step"),
        (lambda: _problem(num_steps=0), ValueError, "num_steps"),
    ],
)
def test_bad_settings(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_non_float_phi_names_the_leaf():
    phi = {"x": jnp.array([1.0, -0.5]), "n": jnp.array([1, 2])}
    for est in (RGU(), FG2U(), FGU(), FG2U_ZO(), Neumann(1)):
        with pytest.raises(TypeError, match=r"phi\['n'\] has dtype int32.*floating point"):
            est(_problem(), phi, KEY)


def test_torch_phi_names_the_backend():
    torch = pytest.importorskip("torch")
    for est in (RGU(), FG2U(), FGU(), FG2U_ZO(), Neumann(1)):
        with pytest.raises(TypeError, match=r"phi\['x'\] is a torch.Tensor, but fg2u.jax.*jnp.asarray.*fg2u.torch"):
            est(_problem(), {"x": torch.tensor([1.0, -0.5])}, KEY)


@pytest.mark.slow
def test_float64_phi_with_a_float32_state_blames_phi():
    """Under jax_enable_x64 a float64 φ promotes a float32 state; the message says φ is the cause."""
    with jax.enable_x64(True):
        problem = UnrolledProblem(
            lambda phi: jnp.zeros(2, jnp.float32),
            lambda th, phi, b: th - 0.1 * (th - phi["x"]),
            lambda th, phi, b: jnp.sum(th**2),
            3,
        )
        phi = {"x": jnp.array([1.0, -0.5], dtype=jnp.float64)}
        for est in (RGU(), FG2U(), FG2U_ZO(), HessianFree()):
            with pytest.raises(TypeError, match=r"^phi has dtype float64 but the inner state is float32.*astype"):
                est(problem, phi, KEY)


def test_direction_structure_and_shape_mismatch():
    with pytest.raises(TypeError, match="directions have pytree structure"):
        FG2U().with_directions(_problem(), PHI, {"y": jnp.ones((3, 2))})
    with pytest.raises(TypeError, match=r"directions\['x'\] has shape \(3, 3\); expected \(b, \*\(2,\)\)"):
        FG2U().with_directions(_problem(), PHI, {"x": jnp.ones((3, 3))})
    with pytest.raises(TypeError, match=r"expected \(b, \*\(2,\)\)"):
        FG2U_ZO().with_directions(_problem(), PHI, {"x": jnp.ones((2,))})
    with pytest.raises(ValueError, match="b >= 1"):
        FG2U().with_directions(_problem(), PHI, {"x": jnp.ones((0, 2))})


def test_step_output_must_match_state():
    bad_structure = _problem(step=lambda th, phi, b: (th, th))
    bad_shape = _problem(step=lambda th, phi, b: jnp.concatenate([th, th]))
    for est in (RGU(), FG2U(), HessianFree()):
        with pytest.raises(TypeError, match="the state returned by step has pytree structure"):
            est(bad_structure, PHI, KEY)
        with pytest.raises(TypeError, match=r"the state returned by step<root> has shape \(4,\)"):
            est(bad_shape, PHI, KEY)


def test_problem_errors():
    with pytest.raises(ValueError, match=r"inner_batches\[0\] has shape \(4, 2\).*num_steps = 5"):
        RGU()(_problem(batches=(jnp.ones((4, 2)),)), PHI, None)
    with pytest.raises(TypeError, match="use FG2U_ZO"):
        FG2U()(BlackBoxProblem(lambda phi, d: jnp.sum(phi["x"])), PHI, KEY)
    with pytest.raises(TypeError, match="outer_loss must return a scalar"):
        RGU()(_problem(outer=lambda th, phi, _: th), PHI, None)
    with pytest.raises(TypeError, match="PRNG key"):
        FG2U()(_problem(), PHI, None)
    with pytest.raises(TypeError, match="PRNG key"):
        FG2U_ZO()(_problem(), PHI, 3)


def _nan_problem():
    return _problem(outer=lambda th, phi, _: jnp.sum(jnp.log(th - 10.0)))  # log of negatives: NaN


@pytest.mark.parametrize(
    "est",
    [
        RGU(check_finite=True),
        FG2U(2, check_finite=True),
        FG2U_ZO(check_finite=True),
        Neumann(2, check_finite=True),
        TRGU(2, check_finite=True),
    ],
    ids=lambda e: e.display_name,
)
def test_check_finite_eager_raises_floating_point_error(est):
    name = est.display_name
    with pytest.raises(
        FloatingPointError, match=rf"^{name}: the meta-gradient estimate or the outer loss contains NaN"
    ):
        est(_nan_problem(), PHI, KEY)


def test_check_finite_under_jit_and_off_by_default():
    with pytest.raises(Exception, match="FloatingPointError: FG2U: the meta-gradient"):
        jax.block_until_ready(jax.jit(FG2U(2, check_finite=True).__call__)(_nan_problem(), PHI, KEY))
    g, aux = FG2U(2)(_nan_problem(), PHI, KEY)  # no check: NaNs come back silently
    assert np.isnan(float(aux.outer_loss))
    g, _ = jax.jit(RGU(check_finite=True).__call__)(_problem(), PHI, None)  # finite: no error
    assert np.all(np.isfinite(np.asarray(g["x"])))


@pytest.mark.parametrize(
    "est",
    [
        FG2U(3, chunk_size=2),
        FG2U_ZO(3, eps=1e-2, scheme="central"),
        RGUCheckpointed(2),
        Neumann(3),
        ConjugateGradient(2),
    ],
    ids=lambda e: e.display_name,
)
@pytest.mark.slow
def test_jit_equals_eager(est):
    batches = jnp.linspace(0.0, 1.0, 5)[:, None] * jnp.ones((5, 2))
    prob = _problem(batches=batches)
    g_eager, aux_eager = est(prob, PHI, KEY)
    g_jit, aux_jit = jax.jit(est.__call__)(prob, PHI, KEY)
    assert isinstance(aux_jit, Aux)
    np.testing.assert_allclose(np.asarray(g_jit["x"]), np.asarray(g_eager["x"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(aux_jit.outer_loss), float(aux_eager.outer_loss), rtol=1e-6)


def test_two_phase_dispatch_python_and_traced():
    prob = _problem()
    first, second = TRGU(1), RGU()
    est = TwoPhase(first, second, switch_step=2)
    g_first, _ = first(prob, PHI, None)
    g_second, _ = second(prob, PHI, None)
    assert np.abs(np.asarray(g_first["x"] - g_second["x"])).max() > 1e-3
    state = est.init(PHI)
    for step, want in enumerate((g_first, g_first, g_second, g_second)):
        assert int(state[0]) == step
        g, _, state = est.estimate(prob, PHI, None, state)
        np.testing.assert_allclose(np.asarray(g["x"]), np.asarray(want["x"]), rtol=1e-6)
    traced = jax.jit(est.estimate)
    for step, want in ((1, g_first), (2, g_second)):
        g, _, new_state = traced(prob, PHI, None, (jnp.asarray(step, jnp.int32), None, None))
        np.testing.assert_allclose(np.asarray(g["x"]), np.asarray(want["x"]), rtol=1e-5)
        assert int(new_state[0]) == step + 1
    g, _ = est(prob, PHI, None)  # called without state: a fresh state, i.e. the first phase
    np.testing.assert_allclose(np.asarray(g["x"]), np.asarray(g_first["x"]), rtol=1e-6)


def test_problem_is_a_pytree_and_new_batches_do_not_recompile():
    traces = []

    def step(th, phi, b):
        traces.append(1)
        return th - 0.1 * (A @ th - phi["x"] - b)

    prob = _problem(step=step, batches=jnp.zeros((5, 2)))
    assert len(jax.tree_util.tree_leaves(prob)) == 1  # only the batches are leaves
    f = jax.jit(RGU().__call__)
    g0, _ = f(prob, PHI, None)
    count = len(traces)
    g1, _ = f(prob.replace(inner_batches=jnp.ones((5, 2))), PHI, None)
    assert len(traces) == count  # same static config, new data: no retrace
    assert np.abs(np.asarray(g1["x"] - g0["x"])).max() > 1e-4
    rebuilt = jax.tree_util.tree_map(lambda x: x + 1, prob)
    assert isinstance(rebuilt, UnrolledProblem) and rebuilt.step is step and rebuilt.num_steps == 5
    bb = BlackBoxProblem(lambda phi, d: jnp.sum(d * phi["x"] ** 2), data=jnp.ones(2))
    assert jax.tree_util.tree_leaves(bb)[0].shape == (2,)
    g, aux = jax.jit(FG2U_ZO(4, scheme="central").__call__)(bb, PHI, KEY)
    assert g["x"].shape == (2,)


@pytest.mark.slow
def test_flax_params_dict_as_phi():
    nn = pytest.importorskip("flax.linen")
    model = nn.Dense(2)
    phi = model.init(jax.random.key(1), jnp.ones((1, 3)))  # {'params': {'kernel': (3, 2), 'bias': (2,)}}
    x = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)

    def step(th, phi, _):
        return th - 0.2 * (th - jnp.tanh(model.apply(phi, x)).mean(0))

    prob = UnrolledProblem(lambda phi: jnp.zeros(2), step, lambda th, phi, _: jnp.sum((th - 0.3) ** 2), 6)
    g_rev, aux = jax.jit(RGU().__call__)(prob, phi, None)
    g_fwd, _ = jax.jit(FGU().__call__)(prob, phi, None)
    assert jax.tree_util.tree_structure(g_rev) == jax.tree_util.tree_structure(phi)
    for a, b in zip(jax.tree_util.tree_leaves(g_rev), jax.tree_util.tree_leaves(g_fwd)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    g_fg, _ = jax.jit(FG2U(num_directions=8, distribution="orthogonal").__call__)(prob, phi, KEY)  # N = 8: exact
    for a, b in zip(jax.tree_util.tree_leaves(g_fg), jax.tree_util.tree_leaves(g_rev)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)
    assert float(aux.outer_loss) == pytest.approx(float(meta_objective(prob)(phi)), rel=1e-6)
    assert unroll(prob, phi).shape == (2,)
