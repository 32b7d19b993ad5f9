"""A torch.nn.Module as the inner model: the functional optimisers match torch.optim step for step (an
independent oracle), and every estimator agrees with RGU and with float64 finite differences when an
MLP with buffers (BatchNorm in eval mode, a registered buffer) is trained by SGD / momentum / Adam.

Finite-difference oracle: for a random unit direction u, D(h) = (L(φ+hu) − L(φ−hu))/(2h) = ∇L·u + c h² + O(h⁴);
the Richardson extrapolation (4D(h/2) − D(h))/3 = ∇L·u + O(h⁴). With h = 1e-4 in float64 the truncation
error is ~1e-16·‖∇⁵L‖ and the rounding error ~u·|L|/h ≈ 1e-12 (Adam's normalised steps make the higher
derivatives large — |c| ≈ 3 here — which is why plain central differences are not enough), so a relative
tolerance of 1e-6 on ∇L·u leaves orders of margin.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import fg2u  # noqa: E402
import fg2u.torch as ft  # noqa: E402
from fg2u.torch import optim  # noqa: E402

DT = torch.float64
N_TRAIN, N_VAL, T, BATCH = 16, 12, 6, 8


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(3, 8)
        self.bn = nn.BatchNorm1d(8)
        self.l2 = nn.Linear(8, 1)
        self.register_buffer("shift", torch.tensor(0.25))

    def forward(self, x):
        return self.l2(torch.tanh(self.bn(self.l1(x)))).squeeze(-1) + self.shift


def make_net(seed=0):
    torch.manual_seed(seed)
    net = Net().to(DT)
    with torch.no_grad():  # non-trivial running statistics, used as constants in eval mode
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


def make_problem(optimizer, num_steps=T):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N_TRAIN, 3, generator=g, dtype=DT)
    y = torch.sin(x.sum(1)) + 0.1 * torch.randn(N_TRAIN, generator=g, dtype=DT)
    xv = torch.randn(N_VAL, 3, generator=g, dtype=DT)
    yv = torch.sin(xv.sum(1))
    idx = torch.stack([torch.randperm(N_TRAIN, generator=g)[:BATCH] for _ in range(num_steps)])
    net = make_net()
    f = ft.functional_model(net)

    def inner_loss(params, phi, batch):
        xb, yb, ib = batch
        weights = torch.sigmoid(phi["logits"][ib])
        reg = torch.exp(phi["log_l2"]) * sum(torch.sum(p**2) for p in params.values())
        return torch.mean(weights * (f(params, xb) - yb) ** 2) + 0.5 * reg

    init, step = ft.optim_transition(inner_loss, optimizer, ft.module_params(net))
    problem = fg2u.UnrolledProblem(
        init=init,
        step=step,
        outer_loss=lambda s, phi, b: torch.mean((f(s.params, b[0]) - b[1]) ** 2),
        num_steps=num_steps,
        inner_batches=(x[idx], y[idx], idx),
        outer_batch=(xv, yv),
    )
    phi = {"logits": 0.3 * torch.randn(N_TRAIN, generator=g, dtype=DT), "log_l2": torch.tensor(-3.0, dtype=DT)}
    return problem, phi


OPTIMIZERS = {
    "sgd": optim.sgd(0.3),
    "momentum": optim.momentum(0.1, momentum=0.9),
    "adam": optim.adam(0.03),
}


def _flat(tree):
    return torch.cat([tree["logits"].reshape(-1), tree["log_l2"].reshape(-1)])


@pytest.fixture(scope="module", params=list(OPTIMIZERS))
def setup(request):
    problem, phi = make_problem(OPTIMIZERS[request.param])
    exact, aux = ft.RGU()(problem, phi, None)
    return problem, phi, exact, aux


def test_rgu_matches_finite_differences(setup):
    problem, phi, exact, _ = setup
    objective = ft.meta_objective(problem)
    g = torch.Generator().manual_seed(3)
    h = 1e-4
    for _ in range(2):
        u = torch.randn(N_TRAIN + 1, generator=g, dtype=DT)
        u = u / u.norm()
        du = {"logits": u[:N_TRAIN], "log_l2": u[N_TRAIN]}

        def central(step, du=du):
            plus = objective({k: phi[k] + step * du[k] for k in phi})
            minus = objective({k: phi[k] - step * du[k] for k in phi})
            return float((plus - minus) / (2 * step))

        fd = (4 * central(h / 2) - central(h)) / 3
        assert fd == pytest.approx(float(_flat(exact) @ u), rel=1e-6, abs=1e-10)


@pytest.mark.parametrize(
    "estimator", [ft.FGU(), ft.RGUCheckpointed(), ft.RGUCheckpointed(segment_length=4), ft.TRGU(T)], ids=repr
)
def test_exact_estimators_agree_with_rgu(setup, estimator):
    problem, phi, exact, aux = setup
    grad, got_aux = estimator(problem, phi, None)
    torch.testing.assert_close(_flat(grad), _flat(exact), rtol=1e-10, atol=1e-13)
    assert float(got_aux.outer_loss) == pytest.approx(float(aux.outer_loss), rel=1e-12)


@pytest.mark.slow
def test_fg2u_is_the_projection_of_rgu(setup):
    problem, phi, exact, _ = setup
    b = 5
    dirs = ft.sample_directions("rademacher", 4, b, like=phi)
    v = torch.cat([dirs["logits"], dirs["log_l2"][:, None]], dim=1)
    want = (v @ _flat(exact)) @ v / b
    grad, _ = ft.FG2U(b, chunk_size=2).with_directions(problem, phi, dirs)
    torch.testing.assert_close(_flat(grad), want, rtol=1e-10, atol=1e-13)
    zo, _ = ft.FG2U_ZO(b, eps=1e-5, scheme="central").with_directions(problem, phi, dirs)
    torch.testing.assert_close(_flat(zo), want, rtol=1e-6, atol=1e-8)


@pytest.mark.slow
def test_float32_module_problem():
    """The same pipeline in float32: exact estimators agree to float32 precision (√ of the unroll's ops)."""
    problem, phi = make_problem(optim.momentum(0.1, momentum=0.9))
    net32 = make_net().to(torch.float32)
    f = ft.functional_model(net32)
    cast = lambda t: t.to(torch.float32) if t.is_floating_point() else t  # noqa: E731
    inner_batches = tuple(cast(t) for t in problem.inner_batches)
    outer_batch = tuple(cast(t) for t in problem.outer_batch)

    def inner_loss(params, p, batch):
        xb, yb, ib = batch
        reg = torch.exp(p["log_l2"]) * sum(torch.sum(q**2) for q in params.values())
        return torch.mean(torch.sigmoid(p["logits"][ib]) * (f(params, xb) - yb) ** 2) + 0.5 * reg

    init, step = ft.optim_transition(inner_loss, optim.momentum(0.1, momentum=0.9), ft.module_params(net32))
    p32 = fg2u.UnrolledProblem(
        init, step, lambda s, p, b: torch.mean((f(s.params, b[0]) - b[1]) ** 2), T, inner_batches, outer_batch
    )
    phi32 = {k: v.float() for k, v in phi.items()}
    exact64, _ = ft.RGU()(problem, phi, None)
    for est in (ft.RGU(), ft.FGU(), ft.RGUCheckpointed()):
        grad, aux = est(p32, phi32, None)
        assert grad["logits"].dtype == torch.float32 and aux.outer_loss.dtype == torch.float32
        torch.testing.assert_close(_flat(grad).double(), _flat(exact64), rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- optimisers vs torch.optim


def _torch_reference(opt_factory, steps, seed=0):
    net = make_net(seed)
    g = torch.Generator().manual_seed(seed + 10)
    xs = torch.randn(steps, 5, 3, generator=g, dtype=DT)
    ys = torch.randn(steps, 5, generator=g, dtype=DT)
    opt = opt_factory(net.parameters())
    history = []
    for t in range(steps):
        opt.zero_grad()
        torch.mean((net(xs[t]) - ys[t]) ** 2).backward()
        opt.step()
        history.append({k: v.detach().clone() for k, v in net.named_parameters()})
    return history, xs, ys


@pytest.mark.parametrize(
    "reference,functional",
    [
        (lambda p: torch.optim.SGD(p, lr=0.1), optim.sgd(0.1)),
        (lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.01), optim.sgd(0.1, weight_decay=0.01)),
        (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), optim.momentum(0.05, momentum=0.9)),
        (
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.02),
            optim.momentum(0.05, momentum=0.8, dampening=0.3, weight_decay=0.02),
        ),
        (
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
            optim.momentum(0.05, momentum=0.9, nesterov=True),
        ),
        (lambda p: torch.optim.Adam(p, lr=0.01), optim.adam(0.01)),
        (
            lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01),
            optim.adam(0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01),
        ),
    ],
    ids=["sgd", "sgd-wd", "momentum", "momentum-damp-wd", "nesterov", "adam", "adam-wd"],
)
def test_functional_optimisers_match_torch_optim(reference, functional):
    steps = 8
    history, xs, ys = _torch_reference(reference, steps)
    net = make_net(0)
    f = ft.functional_model(net)
    init, step = ft.optim_transition(
        lambda params, phi, b: torch.mean((f(params, b[0]) - b[1]) ** 2), functional, ft.module_params(net)
    )
    state = init(None)
    for t in range(steps):
        state = step(state, None, (xs[t], ys[t]))
        for name, want in history[t].items():
            torch.testing.assert_close(state.params[name], want, rtol=1e-12, atol=1e-14)


def test_learning_rate_schedule_receives_the_step_count():
    seen = []
    opt = optim.sgd(lambda count: (seen.append(int(count)), 0.1 / (1 + count))[1])
    params = {"w": torch.ones(2, dtype=DT)}
    state = opt.init(params)
    for _ in range(3):
        updates, state = opt.update({"w": torch.ones(2, dtype=DT)}, state, params)
        params = optim.apply_updates(params, updates)
    assert seen == [0, 1, 2]
    torch.testing.assert_close(params["w"], torch.full((2,), 1 - 0.1 - 0.05 - 0.1 / 3, dtype=DT))


# ---------------------------------------------------------------- module helpers


def test_module_helpers_keep_buffers_and_do_not_modify_the_module():
    net = make_net()
    params = ft.module_params(net)
    assert set(params) == {"l1.weight", "l1.bias", "bn.weight", "bn.bias", "l2.weight", "l2.bias"}
    assert set(ft.module_buffers(net)) >= {"bn.running_mean", "bn.running_var", "shift"}
    f = ft.functional_model(net)
    x = torch.randn(4, 3, dtype=DT)
    torch.testing.assert_close(f(params, x), net(x))
    shifted = {k: v + 1.0 for k, v in params.items()}
    assert not torch.allclose(f(shifted, x), net(x))
    torch.testing.assert_close(net.l1.weight, params["l1.weight"])  # the module is untouched
    with pytest.raises(KeyError, match="not parameters"):
        f({"nope": torch.zeros(1)}, x)


def test_training_mode_batchnorm_is_rejected():
    net = make_net().train()
    with pytest.raises(ValueError, match="module.eval"):
        ft.functional_model(net)


# ---------------------------------------------------------------- truncated and implicit on the module problem


def test_truncated_rgu_is_rgu_from_a_constant_state():
    """TRGU(K) = RGU of the last K steps started from the (constant) state θ_{T−K} of the full unroll."""
    problem, phi = make_problem(OPTIMIZERS["adam"])
    k = 2
    head = problem.replace(num_steps=T - k, inner_batches=tuple(x[: T - k] for x in problem.inner_batches))
    with torch.no_grad():
        theta_head = ft.unroll(head, phi)
    tail = problem.replace(
        init=lambda p: theta_head, num_steps=k, inner_batches=tuple(x[T - k :] for x in problem.inner_batches)
    )
    want, _ = ft.RGU()(tail, phi, None)
    got, _ = ft.TRGU(k)(problem, phi, None)
    torch.testing.assert_close(_flat(got), _flat(want), rtol=1e-12, atol=1e-15)


def test_hessian_free_on_module_matches_autograd_mixed_derivative():
    """SGD step Φ = θ − η∇_θℓ, α = 1/η:  HessianFree = −∂/∂φ ⟨∇_θℓ(θ_T, φ; last batch), ∇_θF(θ_T)⟩
    (F does not depend on φ directly), computed here with plain double-backward autograd."""
    lr = 0.3
    problem, phi = make_problem(optim.sgd(lr))
    state = ft.unroll(problem, phi)
    params = {k: v.detach().requires_grad_(True) for k, v in state.params.items()}
    outer = problem.outer_loss(ft.optim.InnerState(params, state.opt_state), phi, problem.outer_batch)
    g_theta = torch.autograd.grad(outer, list(params.values()))
    phi_req = {k: v.detach().requires_grad_(True) for k, v in phi.items()}
    net = make_net()
    f = ft.functional_model(net)
    xb, yb, ib = (x[-1] for x in problem.inner_batches)
    inner = torch.mean(torch.sigmoid(phi_req["logits"][ib]) * (f(params, xb) - yb) ** 2) + 0.5 * torch.exp(
        phi_req["log_l2"]
    ) * sum(torch.sum(p**2) for p in params.values())
    g_inner = torch.autograd.grad(inner, list(params.values()), create_graph=True)
    mixed = torch.autograd.grad(sum(torch.sum(a * b) for a, b in zip(g_inner, g_theta)), list(phi_req.values()))
    want = -torch.cat([m.reshape(-1) for m in mixed])
    got, _ = ft.HessianFree(alpha=1 / lr)(problem, phi, None)
    torch.testing.assert_close(_flat(got), want, rtol=1e-10, atol=1e-14)
    for est in (ft.Neumann(3, alpha=1.0), ft.ConjugateGradient(3)):  # run on a state with an int counter
        grad, aux = est(problem, phi, None)
        assert bool(torch.isfinite(_flat(grad)).all()) and grad["logits"].dtype == DT
