"""fg2u.torch names fused attention kernels that cannot be differentiated twice, with the fix.

PyTorch's fused ``scaled_dot_product_attention`` kernels have no forward-mode formula and no derivative of
their backward. On CPU (torch 2.13) SDPA itself picks such a kernel (``_scaled_dot_product_flash_attention_for
_cpu``), so the real thing is tested here; the CUDA kernels' errors are reproduced by a stand-in
``autograd.Function`` that raises PyTorch's own texts (torch 2.13, ``torch/csrc/autograd``: the forward-AD
"not implemented" formula and the missing derivative of ``…_backward``), and the ``flash_attn`` package by a
stand-in module of that name (whose once-differentiable backward would otherwise give a silently wrong
meta-gradient: the guard finds its autograd node in the inner loss's graph). The fix the message names — the math SDPA backend, or the plain ("eager")
attention — is checked to give the same estimate as attention written by hand.
"""

from __future__ import annotations

import math
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

import fg2u  # noqa: E402
import fg2u.torch as ft  # noqa: E402
from fg2u.torch._attention import fused_attention_error  # noqa: E402

SDPA = torch.nn.functional.scaled_dot_product_attention
FIX = r'attn_implementation="eager".*SDPBackend\.MATH'

# PyTorch's texts (torch 2.13) for a kernel without forward AD and for one whose backward has no derivative
JVP_MESSAGE = (
    "Trying to use forward AD with _scaled_dot_product_efficient_attention that does not support it because it "
    "has not been implemented yet.\nPlease file an issue to PyTorch at https://github.com/pytorch/pytorch/issues/"
    "new?template=feature-request.yml so that we can prioritize its implementation or submit a PR adding the "
    "implementation to derivatives.yaml"
)
DOUBLE_BACKWARD_MESSAGE = "derivative for aten::_scaled_dot_product_efficient_attention_backward is not implemented"


def hand_attention(q, k, v):
    """softmax(q kᵀ/√d) v, written out: every op has forward AD and double backward."""
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1) @ v


class _AttentionBackward(torch.autograd.Function):
    """The backward of the stand-in kernel: computes the vjp, but has no derivative itself (like aten's)."""

    @staticmethod
    def forward(q, k, v, g):
        with torch.enable_grad():
            inputs = [x.detach().requires_grad_(True) for x in (q, k, v)]
            return torch.autograd.grad(hand_attention(*inputs), inputs, g)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(DOUBLE_BACKWARD_MESSAGE)


class StandInEfficientAttention(torch.autograd.Function):
    """Behaves like CUDA's memory-efficient SDPA kernel under AD: values and one backward, then PyTorch's errors."""

    generate_vmap_rule = True

    @staticmethod
    def forward(q, k, v):
        return hand_attention(q, k, v)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, g):
        return _AttentionBackward.apply(*ctx.saved_tensors, g)

    @staticmethod
    def jvp(ctx, *tangents):
        raise NotImplementedError(JVP_MESSAGE)


def attention_problem(attention, num_steps=3, dtype=torch.float64):
    """θ: a (4, 8) query matrix trained by SGD on the self-attention output; φ: per-row loss weights."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 4, 8, generator=gen, dtype=dtype)  # (batch, heads, tokens, dim)
    target = torch.randn(1, 1, 4, 8, generator=gen, dtype=dtype)

    def loss(params, phi, weights):
        out = attention(x @ params["wq"], x, x)
        return torch.sum(weights[:, None] * ((out - target)[0, 0] ** 2))

    init, step = ft.optim_transition(
        lambda p, phi, b: loss(p, phi, torch.sigmoid(phi)), ft.optim.sgd(0.1), {"wq": torch.eye(8, dtype=dtype)}
    )
    outer = lambda state, phi, batch: loss(state.params, phi, torch.ones(4, dtype=dtype))  # noqa: E731
    return fg2u.UnrolledProblem(init, step, outer, num_steps=num_steps), torch.zeros(4, dtype=dtype)


def _cpu_sdpa_lacks_forward_ad() -> bool:
    q = torch.randn(1, 1, 4, 8)
    try:
        torch.func.jvp(lambda q: SDPA(q, q, q), (q,), (q,))
    except NotImplementedError:
        return True
    return False


@pytest.mark.parametrize("estimator", [ft.FG2U(num_directions=3), ft.RGU(), ft.FGU()], ids=lambda e: type(e).__name__)
def test_the_cpu_sdpa_kernel_is_named_with_the_fix(estimator):
    if not _cpu_sdpa_lacks_forward_ad():
        pytest.skip("this torch's CPU scaled_dot_product_attention has forward AD: nothing to explain")
    problem, phi = attention_problem(SDPA, dtype=torch.float32)
    with pytest.raises(NotImplementedError, match=r"_scaled_dot_product_flash_attention_for_cpu\b.*" + FIX):
        estimator(problem, phi.float(), 0)


def test_the_math_backend_and_hand_attention_give_the_same_estimate():
    """The fix works: FG2U with SDPA forced onto its math backend equals FG2U with hand-written attention
    (same directions; float64, so the two softmax implementations agree to ~1e-15 per op), and RGU agrees."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    directions = ft.sample_directions("rademacher", 7, 4, like=torch.zeros(4, dtype=torch.float64))
    problem, phi = attention_problem(SDPA)
    with sdpa_kernel(SDPBackend.MATH):
        got, _ = ft.FG2U(num_directions=4).with_directions(problem, phi, directions)
        exact_math, _ = ft.RGU()(problem, phi, None)
    hand_problem, _ = attention_problem(hand_attention)
    want, _ = ft.FG2U(num_directions=4).with_directions(hand_problem, phi, directions)
    exact, _ = ft.RGU()(hand_problem, phi, None)
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)
    assert torch.allclose(exact_math, exact, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("estimator", [ft.FG2U(num_directions=3), ft.RGU(), ft.FGU()], ids=lambda e: type(e).__name__)
def test_a_cuda_kernel_stand_in_is_named_with_the_fix(estimator):
    """FG2U meets the double-backward error, then torch.func.jvp's; RGU the double-backward error."""
    problem, phi = attention_problem(StandInEfficientAttention.apply)
    with pytest.raises(NotImplementedError, match=r"kernel _scaled_dot_product_efficient_attention, .*" + FIX) as info:
        estimator(problem, phi, 0)
    assert isinstance(info.value.__cause__, (RuntimeError, NotImplementedError))  # PyTorch's error kept as cause


def test_the_flash_attn_package_is_named(tmp_path, monkeypatch):
    """A stand-in `flash_attn` package: an old-style autograd.Function (no jvp, once-differentiable backward)."""
    package = tmp_path / "flash_attn"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            import math, torch
            from torch.autograd.function import once_differentiable

            class FlashAttnFunc(torch.autograd.Function):
                @staticmethod
                def forward(ctx, q, k, v):
                    ctx.save_for_backward(q, k, v)
                    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1) @ v

                @staticmethod
                @once_differentiable
                def backward(ctx, g):
                    with torch.enable_grad():
                        q, k, v = (x.detach().requires_grad_(True) for x in ctx.saved_tensors)
                        out = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1) @ v
                        return torch.autograd.grad(out, (q, k, v), g)

            def flash_attn_func(q, k, v):
                return FlashAttnFunc.apply(q, k, v)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "flash_attn", raising=False)
    import flash_attn

    problem, phi = attention_problem(flash_attn.flash_attn_func)
    for estimator in (ft.FG2U(num_directions=2), ft.RGU()):
        with pytest.raises(NotImplementedError, match=r"flash_attn package's attention.*" + FIX):
            estimator(problem, phi, 0)


def test_other_errors_are_not_rewritten():
    assert (
        fused_attention_error("FG2U", RuntimeError("derivative for aten::linalg_eigh_backward is not implemented"))
        is None
    )
    assert (
        fused_attention_error("FG2U", NotImplementedError("Trying to use forward AD with foo that does not support it"))
        is None
    )
    problem, phi = attention_problem(hand_attention)
    broken = problem.replace(outer_loss=lambda state, phi, batch: (_ for _ in ()).throw(RuntimeError("my own bug")))
    with pytest.raises(RuntimeError, match="^my own bug$"):
        ft.FG2U(num_directions=2)(broken, phi, 0)


def test_a_transformers_model_with_sdpa_is_named_and_eager_works():
    transformers = pytest.importorskip("transformers")
    if not _cpu_sdpa_lacks_forward_ad():
        pytest.skip("this torch's CPU scaled_dot_product_attention has forward AD: nothing to explain")

    def problem_for(implementation):
        torch.manual_seed(0)
        config = transformers.GPT2Config(
            vocab_size=16, n_positions=8, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation=implementation,
        )  # fmt: skip
        model = transformers.GPT2LMHeadModel(config).eval()
        f, ids = ft.functional_model(model), torch.arange(12).reshape(2, 6) % 16

        def nll(params, w):
            logits = f(params, input_ids=ids).logits[:, :-1]
            return torch.mean(
                w * torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
            )

        init, step = ft.optim_transition(
            lambda p, phi, b: nll(p, torch.sigmoid(phi)), ft.optim.sgd(0.1), ft.module_params(model)
        )
        return fg2u.UnrolledProblem(init, step, lambda s, phi, b: nll(s.params, 1.0), num_steps=2)

    phi = torch.zeros(2, 5)
    with pytest.raises(NotImplementedError, match="FG2U: .*_scaled_dot_product_flash_attention_for_cpu.*" + FIX):
        ft.FG2U(num_directions=2)(problem_for("sdpa"), phi, 0)
    grad, _ = ft.FG2U(num_directions=2)(problem_for("eager"), phi, 0)
    assert grad.shape == phi.shape and bool(torch.isfinite(grad).all())
