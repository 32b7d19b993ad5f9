"""The double-vjp tangent kernel (fg2u.torch._tangent) against independent oracles.

Oracles: central finite differences of L(φ + εv) in float64 (truncation error O(ε²)·|L'''|, rounding
O(u·|L|/ε); with ε = 1e-5 both are far below the 1e-8 tolerance for these smooth, O(1) problems), and the
exact reverse-mode gradient ∇L (RGU) dotted with v.
"""

from __future__ import annotations

import weakref

import pytest

torch = pytest.importorskip("torch")

import fg2u  # noqa: E402
import fg2u.torch as ft  # noqa: E402
from fg2u.torch import _tangent, optim  # noqa: E402
from fg2u.torch._pytree import tree_flatten  # noqa: E402


@pytest.fixture(autouse=True)
def _float64_default():
    """float64 by default inside this module's tests only (a module-level switch would leak into other files)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _mlp_problem(
    num_steps: int = 6,
    phi_in_init: bool = True,
    optimizer=None,
    unused_param: bool = False,
    seed: int = 0,
):
    """A tanh MLP trained through ``optim_transition`` (a :class:`~fg2u.torch.optim.GradientStep`) by
    ``optimizer`` (default momentum SGD: state = params + momentum buffer + an int64 step count) with
    per-parameter weight decay φ; θ_0 depends on φ when ``phi_in_init``; minibatches per step.
    ``unused_param`` adds a zero parameter the loss ignores (its gradient is exactly zero: Adam's √v at v = 0)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_steps, 8, 5, generator=g)
    y = torch.randn(num_steps, 8, 2, generator=g)
    xv, yv = torch.randn(16, 5, generator=g), torch.randn(16, 2, generator=g)
    p0 = {"w1": torch.randn(5, 7, generator=g) / 2, "b1": torch.zeros(7), "w2": torch.randn(7, 2, generator=g) / 3}
    if unused_param:
        p0["u"] = torch.zeros(3)
    if optimizer is None:
        optimizer = optim.momentum(0.3, momentum=0.5)

    def net(p, xb):
        return torch.tanh(xb @ p["w1"] + p["b1"]) @ p["w2"]

    def inner_loss(p, phi, batch):
        xb, yb = batch
        return ((net(p, xb) - yb) ** 2).mean() + 0.5 * sum((phi[k] * p[k] ** 2).sum() for k in p)

    init_params = (lambda phi: {k: v + 0.1 * torch.tanh(phi[k]) for k, v in p0.items()}) if phi_in_init else p0
    init, step = ft.optim_transition(inner_loss, optimizer, init_params)
    problem = fg2u.UnrolledProblem(
        init=init,
        step=step,
        num_steps=num_steps,
        inner_batches=(x, y),
        outer_loss=lambda s, phi, b: ((net(s.params, xv) - yv) ** 2).mean() + 1e-2 * sum(v.sum() for v in phi.values()),
    )
    phi = {k: 0.05 + 0.1 * torch.rand(v.shape, generator=g) for k, v in p0.items()}
    return problem, phi


def _autograd_step_problem(num_steps: int = 5):
    """The inner gradient by torch.autograd.grad(create_graph=True) instead of torch.func.grad."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4, 4, generator=g)
    a = a @ a.T / 4 + torch.eye(4)
    target = torch.randn(4, generator=g)

    def step(theta, phi, _):
        theta = theta if theta.requires_grad else theta.requires_grad_(True)
        with torch.enable_grad():
            loss = 0.5 * theta @ a @ theta + (phi * torch.sin(theta)).sum()
            (grad,) = torch.autograd.grad(loss, theta, create_graph=True)
        return theta - 0.2 * grad

    problem = fg2u.UnrolledProblem(
        init=lambda phi: torch.zeros(4),
        step=step,
        num_steps=num_steps,
        outer_loss=lambda th, phi, b: ((th - target) ** 2).sum(),
    )
    return problem, torch.linspace(0.5, 1.5, 4)


def _flat(tree):
    return torch.cat([x.reshape(-1) for x in tree_flatten(tree)[0]])


def _directions(phi, c, seed=3):
    return ft.sample_directions("rademacher", seed, c, like=phi)


def _central_difference(problem, phi, v, eps=1e-5):
    objective = ft.meta_objective(problem)
    shift = lambda s: tree_flatten(phi)[1].unflatten(  # noqa: E731
        [p + s * eps * d for p, d in zip(tree_flatten(phi)[0], tree_flatten(v)[0])]
    )
    with torch.no_grad():
        return float((objective(shift(1.0)) - objective(shift(-1.0))) / (2 * eps))


@pytest.mark.parametrize("phi_in_init", [True, False])
def test_directional_derivative_matches_finite_differences_and_rgu(phi_in_init):
    problem, phi = _mlp_problem(phi_in_init=phi_in_init)
    dirs = _directions(phi, 3)
    leaves, spec = tree_flatten(phi)
    derivs, loss = _tangent.directional_derivatives(problem, leaves, spec, tree_flatten(dirs)[0])
    exact, aux = ft.RGU()(problem, phi)
    torch.testing.assert_close(loss, aux.outer_loss, rtol=1e-14, atol=0)
    for i in range(3):
        v = {k: d[i] for k, d in dirs.items()}
        assert derivs[i].item() == pytest.approx(float(_flat(exact) @ _flat(v)), rel=1e-10, abs=1e-12)
        assert derivs[i].item() == pytest.approx(_central_difference(problem, phi, v), rel=1e-7, abs=1e-9)


def test_batched_directions_equal_one_at_a_time():
    problem, phi = _mlp_problem()
    dirs = tree_flatten(_directions(phi, 4))[0]
    leaves, spec = tree_flatten(phi)
    together, _ = _tangent.directional_derivatives(problem, leaves, spec, dirs)
    single = torch.stack(
        [_tangent.directional_derivatives(problem, leaves, spec, [d[i : i + 1] for d in dirs])[0][0] for i in range(4)]
    )
    torch.testing.assert_close(together, single, rtol=1e-12, atol=1e-14)


def test_step_with_autograd_grad_and_estimator_equals_jvp_reference():
    """A step written with torch.autograd.grad works too; FG2U's estimate equals the torch.func.jvp path."""
    problem, phi = _autograd_step_problem()
    dirs = ft.sample_directions("gaussian", 5, 3, like=phi)
    got, aux = ft.FG2U(3, chunk_size=2).with_directions(problem, phi, dirs)
    exact, _ = ft.RGU()(problem, phi)
    want = (dirs @ exact) @ dirs / 3
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)

    problem, phi = _mlp_problem()
    dirs = _directions(phi, 3)
    leaves, spec = tree_flatten(phi)
    ref, ref_loss = _tangent._jvp_estimate("FG2U", problem, phi, tree_flatten(dirs)[0], spec, 3, 2)
    got, loss = _tangent.forward_estimate("FG2U", problem, phi, tree_flatten(dirs)[0], spec, 3, 2)
    torch.testing.assert_close(_flat(got), _flat(ref), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-14, atol=0)


@pytest.mark.slow
def test_saved_tensors_do_not_grow_with_unroll_depth():
    """Only one step's graph is alive at a time: the peak number of tensors saved for backward is the same
    for T = 2 and T = 12, and none is left afterwards (torch.func.grad refuses saved-tensor hooks, so the
    step here uses torch.autograd.grad)."""

    def peak_saved(num_steps: int) -> tuple[int, int]:
        problem, phi = _autograd_step_problem(num_steps)
        alive: weakref.WeakSet = weakref.WeakSet()
        peak = 0

        class Box:
            def __init__(self, t):
                self.t = t

        def pack(t):
            nonlocal peak
            box = Box(t)
            alive.add(box)
            peak = max(peak, len(alive))
            return box

        leaves, spec = tree_flatten(phi)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda box: box.t):
            _tangent.directional_derivatives(problem, leaves, spec, [ft.sample_directions("rademacher", 0, 2, phi)])
        import gc

        gc.collect()
        return peak, len(alive)

    short, long_ = peak_saved(2), peak_saved(12)
    assert short[0] == long_[0] > 0
    assert long_[1] == 0


_OPTIMIZERS = {
    "sgd": lambda: optim.sgd(0.3),
    "sgd-wd-schedule": lambda: optim.sgd(lambda count: 0.3 / (1.0 + count), weight_decay=0.05),
    "momentum": lambda: optim.momentum(0.2, momentum=0.7, dampening=0.1, weight_decay=0.02),
    "nesterov": lambda: optim.momentum(0.2, momentum=0.6, nesterov=True),
    "adam": lambda: optim.adam(0.05, weight_decay=0.01),
    "adam-eps-root": lambda: optim.adam(0.05, eps_root=1e-6),
}


@pytest.mark.parametrize("name", sorted(_OPTIMIZERS))
@pytest.mark.parametrize("c", [1, 3])
def test_gradient_step_rule_matches_rgu_and_the_generic_kernel(name, c):
    """optim_transition's step goes through the Hessian-vector-product rule and the optimiser's own tangent
    (Optimizer.tangent); the same step hidden in a lambda goes through the generic double-vjp kernel. Both
    equal the exact ∇L·v (RGU) to float64 rounding, for every built-in optimiser, one or several directions,
    θ_0 depending on φ or not, and a parameter with an exactly zero gradient (Adam's √v at v = 0)."""
    for phi_in_init in (True, False):
        problem, phi = _mlp_problem(5, phi_in_init, _OPTIMIZERS[name](), unused_param=True, seed=4)
        assert isinstance(problem.step, optim.GradientStep)
        generic = problem.replace(step=lambda s, p, b, step=problem.step: step(s, p, b))
        dirs = _directions(phi, c, seed=7)
        leaves, spec = tree_flatten(phi)
        fast, loss = _tangent.directional_derivatives(problem, leaves, spec, tree_flatten(dirs)[0])
        slow, slow_loss = _tangent.directional_derivatives(generic, leaves, spec, tree_flatten(dirs)[0])
        exact, aux = ft.RGU()(problem, phi)
        want = torch.stack([_flat(exact) @ _flat({k: d[i] for k, d in dirs.items()}) for i in range(c)])
        assert torch.isfinite(fast).all()
        torch.testing.assert_close(fast, want, rtol=1e-10, atol=1e-13)
        torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-13)
        torch.testing.assert_close(loss, aux.outer_loss, rtol=1e-14, atol=0)
        torch.testing.assert_close(slow_loss, loss, rtol=1e-14, atol=0)


def test_optim_step_autograd_gradient_equals_func_grad():
    """The step's inner gradient by torch.autograd.grad equals torch.func.grad's (used inside torch.func
    transforms), keeps no graph under no_grad, and takes the partial derivative in the parameters alone even
    when θ_0 *is* φ (the same tensor objects: a leaf of params that is also a leaf of φ)."""

    def inner_loss(p, phi, batch):
        return (torch.sin(p["a"]) * phi["a"]).sum() + (p["a"] ** 2 * phi["a"] ** 3).sum()

    step = ft.optim_transition(inner_loss, optim.sgd(0.1), lambda phi: phi)[1]
    phi = {"a": torch.linspace(0.2, 1.0, 5).requires_grad_(True)}
    state = optim.InnerState(phi, optim.sgd(0.1).init(phi))  # params are φ's own tensors
    got = step.grad(state.params, phi, None)
    want = torch.func.grad(lambda p: inner_loss(p, phi, None))({"a": phi["a"].detach()})
    torch.testing.assert_close(got["a"], want["a"], rtol=1e-14, atol=0)
    assert got["a"].requires_grad  # differentiable further (reverse unrolling)
    with torch.no_grad():
        plain = step.grad(state.params, phi, None)
    assert not plain["a"].requires_grad
    torch.testing.assert_close(plain["a"], want["a"], rtol=1e-14, atol=0)

    # a leaf computed from another leaf (θ_0 = {a, b = 2a}): still the partial derivatives
    def two_loss(p, phi, batch):
        return (torch.sin(p["a"]) * p["b"] ** 2).sum() + (phi["a"] * p["a"]).sum()

    two = ft.optim_transition(two_loss, optim.sgd(0.1), lambda phi: phi)[1]
    a = phi["a"] * 1.5
    params = {"a": a, "b": 2 * a}
    got = two.grad(params, phi, None)
    want = torch.func.grad(lambda p: two_loss(p, phi, None))({k: v.detach() for k, v in params.items()})
    for k in ("a", "b"):
        torch.testing.assert_close(got[k], want[k], rtol=1e-14, atol=0)

    # the previous apply()'s own outputs (fresh p + u tensors) skip the aliases: the same gradient, and the
    # same derivative of it in φ, as through the aliases; a state that reuses one output under two keys
    # (a leaf feeding another) is not taken for fresh and still gets the partial derivatives
    two_init, two = ft.optim_transition(two_loss, optim.sgd(0.1), lambda phi: phi)
    phi2 = {"a": torch.linspace(0.2, 1.0, 5, dtype=torch.float64).requires_grad_(True)}
    s1 = two(optim.InnerState({"a": phi2["a"] * 1.5, "b": phi2["a"] * 3.0}, optim.sgd(0.1).init(phi2)), phi2, None)
    assert [r() for r in two._made] == list(s1.params.values())  # made by apply: the shortcut applies
    fast = two.grad(s1.params, phi2, None)
    slow = optim._autograd_grad(two.loss, s1.params, phi2, None)  # no record of apply: aliases
    for k in ("a", "b"):
        torch.testing.assert_close(fast[k], slow[k], rtol=0, atol=0)
        d_fast = torch.autograd.grad(fast[k].sum(), phi2["a"], retain_graph=True)[0]
        d_slow = torch.autograd.grad(slow[k].sum(), phi2["a"], retain_graph=True)[0]
        torch.testing.assert_close(d_fast, d_slow, rtol=1e-14, atol=0)
    shared = {"a": s1.params["a"], "b": s1.params["a"]}  # one fresh tensor under two keys
    got = two.grad(shared, phi2, None)
    want = torch.func.grad(lambda p: two_loss(p, phi2, None))({k: v.detach() for k, v in shared.items()})
    for k in ("a", "b"):
        torch.testing.assert_close(got[k], want[k], rtol=1e-14, atol=0)

    # RGU through a 3-step unroll with θ_0 = φ equals the func.grad-based forward-mode reference
    problem = fg2u.UnrolledProblem(
        init=ft.optim_transition(inner_loss, optim.sgd(0.1), lambda phi: phi)[0],
        step=step,
        num_steps=3,
        outer_loss=lambda s, phi, b: (s.params["a"] ** 2).sum(),
    )
    phi = {"a": torch.linspace(0.2, 1.0, 5)}
    exact, _ = ft.RGU()(problem, phi)
    eye = {"a": torch.eye(5)}
    ref, _ = _tangent._jvp_estimate("FG2U", problem, phi, [eye["a"]], tree_flatten(phi)[1], 5, None)
    torch.testing.assert_close(exact["a"], ref["a"], rtol=1e-12, atol=1e-14)


@pytest.mark.slow
def test_gradient_step_keeps_one_step_graph_alive():
    """optim_transition's step (inner gradient by torch.autograd.grad outside torch.func transforms) keeps
    FG²U's memory flat in T: at most one step's graph is alive at any time, for one or several directions,
    and none afterwards. Tracked by weak references to each step's hidden activations (a tensor every step's
    graph saves), which tells a freed graph from a live one without instrumenting autograd."""
    g = torch.Generator().manual_seed(5)
    num_steps = 8
    x, y = torch.randn(num_steps, 8, 5, generator=g), torch.randn(num_steps, 8, 2, generator=g)
    p0 = {"w1": torch.randn(5, 7, generator=g) / 2, "w2": torch.randn(7, 2, generator=g) / 3}
    hidden: list = []
    most_alive = 0

    def inner_loss(p, phi, batch):
        nonlocal most_alive
        h = torch.tanh(batch[0] @ p["w1"])
        hidden.append(weakref.ref(h))
        most_alive = max(most_alive, sum(r() is not None for r in hidden))
        return ((h @ p["w2"] - batch[1]) ** 2).mean() + 0.5 * sum((phi[k] * p[k] ** 2).sum() for k in p)

    init, step = ft.optim_transition(inner_loss, optim.adam(0.05), p0)
    problem = fg2u.UnrolledProblem(
        init=init,
        step=step,
        num_steps=num_steps,
        inner_batches=(x, y),
        outer_loss=lambda s, phi, b: (s.params["w2"] ** 2).sum(),
    )
    phi = {k: 0.05 + 0.1 * torch.rand(v.shape, generator=g) for k, v in p0.items()}
    leaves, spec = tree_flatten(phi)
    for c in (1, 3):
        hidden.clear()
        most_alive = 0
        _tangent.directional_derivatives(problem, leaves, spec, tree_flatten(_directions(phi, c))[0])
        import gc

        gc.collect()
        assert len(hidden) == num_steps
        assert most_alive == 1  # the graph of step t is gone when step t + 1 computes its loss
        assert all(r() is None for r in hidden)
