"""fg2u.torch rejects bad input with clear errors (the same types as fg2u.jax), check_finite names the
estimator, dtypes are preserved, and `import fg2u` does not import torch."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import pytest

torch = pytest.importorskip("torch")

import fg2u  # noqa: E402
import fg2u.torch as ft  # noqa: E402


def make_problem(dtype=torch.float64, num_steps=3, **kw):
    return fg2u.UnrolledProblem(
        init=lambda p: torch.zeros(2, dtype=dtype),
        step=lambda th, p, _: th - 0.1 * (th - p["w"]),
        outer_loss=lambda th, p, _: torch.sum(th**2),
        num_steps=num_steps,
        **kw,
    )


PHI = {"w": torch.tensor([1.0, -2.0], dtype=torch.float64)}
ALL = [
    ft.FG2U(2),
    ft.FG2U_ZO(2),
    ft.RGU(),
    ft.TRGU(1),
    ft.FGU(),
    ft.RGUCheckpointed(),
    ft.Neumann(2),
    ft.ConjugateGradient(2),
    ft.HessianFree(),
]


@pytest.mark.parametrize(
    "factory,match",
    [
        (lambda: ft.FG2U(num_directions=0), "num_directions"),
        (lambda: ft.FG2U(num_directions=2.5), "num_directions"),
        (lambda: ft.FG2U(distribution="uniform"), "distribution"),
        (lambda: ft.FG2U(chunk_size=0), "chunk_size"),
        (lambda: ft.FG2U_ZO(eps=0.0), "eps"),
        (lambda: ft.FG2U_ZO(eps=-1e-3), "eps"),
        (lambda: ft.FG2U_ZO(scheme="backward"), "scheme"),
        (lambda: ft.TRGU(0), "truncation"),
        (lambda: ft.RGUCheckpointed(segment_length=0), "segment_length"),
        (lambda: ft.Neumann(-1), "num_terms"),
        (lambda: ft.Neumann(2, alpha=0.0), "alpha"),
        (lambda: ft.ConjugateGradient(0), "num_iterations"),
        (lambda: ft.HessianFree(alpha=-1.0), "alpha"),
        (lambda: ft.TwoPhase(ft.RGU(), "FG2U", 3), "second"),
        (lambda: ft.TwoPhase(ft.RGU(), ft.RGU(), -1), "switch_step"),
        (lambda: ft.optim.sgd(-0.1), "lr"),
        (lambda: ft.optim.momentum(0.1, momentum=1.5), "momentum"),
        (lambda: ft.optim.momentum(0.1, dampening=0.5, nesterov=True), "nesterov"),
        (lambda: ft.optim.adam(betas=(0.9,)), "betas"),
        (lambda: fg2u.UnrolledProblem(lambda p: p, lambda s, p, b: s, lambda s, p, b: s, num_steps=0), "num_steps"),
    ],
)
def test_bad_settings(factory, match):
    with pytest.raises((ValueError, TypeError), match=match):
        factory()


@pytest.mark.parametrize("estimator", ALL, ids=lambda e: e.display_name)
def test_non_float_phi_is_a_type_error(estimator):
    with pytest.raises(TypeError, match="floating"):
        estimator(make_problem(), {"w": torch.tensor([1, 2])}, 0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        estimator(make_problem(), {"w": [1.0, 2.0]}, 0)


@pytest.mark.parametrize("estimator", ALL, ids=lambda e: e.display_name)
def test_step_changing_the_state_structure_is_a_type_error(estimator):
    bad = make_problem().replace(step=lambda th, p, _: {"theta": th})
    with pytest.raises(TypeError, match="state returned by step"):
        estimator(bad, PHI, 0)
    bad_shape = make_problem().replace(step=lambda th, p, _: torch.cat([th, th]))
    with pytest.raises(TypeError, match="shape"):
        estimator(bad_shape, PHI, 0)


@pytest.mark.parametrize("estimator", [e for e in ALL if not isinstance(e, ft.FG2U_ZO)], ids=lambda e: e.display_name)
def test_black_box_problem_needs_fg2u_zo(estimator):
    box = fg2u.BlackBoxProblem(objective=lambda p, d: torch.sum(p["w"] ** 2))
    with pytest.raises(TypeError, match="FG2U_ZO"):
        estimator(box, PHI, 0)


def test_directions_must_match_phi():
    problem = make_problem()
    for est in (ft.FG2U(2), ft.FG2U_ZO(2)):
        with pytest.raises(TypeError, match="structure"):
            est.with_directions(problem, PHI, {"v": torch.ones(2, 2)})
        with pytest.raises(TypeError, match=r"\(b, \*\(2,\)\)"):
            est.with_directions(problem, PHI, {"w": torch.ones(2)})  # no leading axis
        with pytest.raises(TypeError, match="shape"):
            est.with_directions(problem, PHI, {"w": torch.ones(4, 3)})
        with pytest.raises(ValueError, match="at least one direction"):
            est.with_directions(problem, PHI, {"w": torch.ones(0, 2)})
    two = {"a": torch.zeros(2, dtype=torch.float64), "b": torch.zeros(3, dtype=torch.float64)}
    with pytest.raises(TypeError, match="same leading axis"):
        ft.FG2U(2).with_directions(make_problem(), two, {"a": torch.ones(2, 2), "b": torch.ones(3, 3)})


def test_keys():
    with pytest.raises(TypeError, match="not None"):
        ft.FG2U(2)(make_problem(), PHI, None)
    with pytest.raises(TypeError, match="torch.Generator or an int seed"):
        ft.FG2U(2)(make_problem(), PHI, "seed")
    ft.FG2U(2)(make_problem(), PHI, torch.Generator().manual_seed(0))  # both kinds work
    ft.FG2U(2)(make_problem(), PHI, 3)


def test_inner_batches_need_a_leading_axis_t_and_scalar_losses():
    bad = make_problem(inner_batches=torch.zeros(4, 2))
    with pytest.raises(ValueError, match="num_steps = 3"):
        ft.RGU()(bad, PHI, None)
    vector_loss = make_problem().replace(outer_loss=lambda th, p, _: th)
    with pytest.raises(TypeError, match="scalar"):
        ft.RGU()(vector_loss, PHI, None)


@pytest.mark.parametrize("estimator", ALL, ids=lambda e: e.display_name)
def test_check_finite_names_the_estimator(estimator):
    exploding = make_problem(num_steps=60).replace(step=lambda th, p, _: 1e8 * th + p["w"])
    checked = type(estimator)(**{**estimator.__dict__, "check_finite": True})
    with pytest.raises(FloatingPointError, match=estimator.display_name):
        checked(exploding, PHI, 0)
    grad, aux = estimator(exploding, PHI, 0)  # unchecked: returns the non-finite values
    assert not bool(torch.isfinite(aux.outer_loss)) or not bool(torch.isfinite(grad["w"]).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("estimator", ALL, ids=lambda e: e.display_name)
def test_dtype_is_preserved(estimator, dtype):
    phi = {"w": PHI["w"].to(dtype)}
    grad, aux = estimator(make_problem(dtype), phi, 0)
    assert grad["w"].dtype == dtype and grad["w"].shape == (2,)
    assert isinstance(aux, fg2u.Aux) and aux.outer_loss.dtype == dtype and aux.outer_loss.shape == ()


def test_estimators_are_frozen_hashable_dataclasses():
    est = ft.FG2U(4, chunk_size=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.num_directions = 3
    assert hash(est) == hash(ft.FG2U(4, chunk_size=2)) and est == ft.FG2U(4, chunk_size=2)


def test_import_fg2u_does_not_import_torch():
    code = "import sys, fg2u; assert 'torch' not in sys.modules, 'fg2u imported torch'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


@pytest.mark.parametrize("estimator", ALL, ids=lambda e: type(e).__name__)
def test_float64_phi_with_a_float32_state_blames_phi(estimator):
    """θ float32, φ float64: θ − 0.1(θ − φ) is promoted to float64 by φ; the message says φ is the cause."""
    problem = make_problem(dtype=torch.float32)
    with pytest.raises(
        TypeError, match=r"^phi has dtype torch.float64 but the inner state is torch.float32.*phi\.to\(torch.float32\)"
    ):
        estimator(problem, PHI, 0)
    # a genuinely bad step (its own cast, φ innocent) keeps the plain message
    cast = make_problem(dtype=torch.float32).replace(step=lambda th, p, _: th.double())
    with pytest.raises(TypeError, match=r"^the state returned by step<root> has dtype torch.float64.*cast it"):
        estimator(cast, {"w": PHI["w"].float()}, 0)


@pytest.mark.parametrize("estimator", ALL, ids=lambda e: type(e).__name__)
def test_numpy_phi_is_named_with_the_conversion(estimator):
    np = pytest.importorskip("numpy")
    with pytest.raises(TypeError, match=r"phi\['w'\] is a NumPy array \(float64, shape \(2,\)\).*torch\.as_tensor"):
        estimator(make_problem(), {"w": np.array([1.0, -2.0])}, 0)


@pytest.mark.parametrize("closure_requires_grad", [False, True])
def test_meta_objective_value_does_not_warn_and_records_no_graph(closure_requires_grad):
    """φ requires grad (as for a torch.optim meta optimiser) and the step may close over a tensor that does
    (an nn.Module's weight): float(L) must not warn, and no reverse graph is kept; autograd=True keeps one,
    whose gradient matches RGU's."""
    scale = torch.tensor(0.1, dtype=torch.float64, requires_grad=closure_requires_grad)
    problem = make_problem().replace(step=lambda th, p, _: th - scale * (th - p["w"]))
    phi = {"w": PHI["w"].clone().requires_grad_(True)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = ft.meta_objective(problem)(phi)
        value = float(loss)
    assert not loss.requires_grad and loss.grad_fn is None
    # θ_3 = (1 − 0.9³) w (θ_0 = 0, three steps of θ ← 0.9 θ + 0.1 w), L = ‖θ_3‖²
    assert value == pytest.approx((1 - 0.9**3) ** 2 * 5.0, rel=1e-14)
    recorded = ft.meta_objective(problem, autograd=True)(phi)
    (grad,) = torch.autograd.grad(recorded, [phi["w"]])
    want, _ = ft.RGU()(problem, phi, None)
    assert torch.allclose(grad, want["w"], rtol=1e-14, atol=0)
    # torch.func transforms still see through the default (φ is a functorch tensor there)
    assert torch.allclose(torch.func.grad(ft.meta_objective(problem))(phi)["w"], want["w"], rtol=1e-14, atol=0)
