"""The weight model, the CaMeLS inner step against a hand-written SGD step, and the meta-gradient:
FG²U's directional derivative (forward mode) against RGU's exact gradient (reverse mode).
(Fixtures ``tiny`` and the one-thread setting: conftest.py.)"""

import math

import pytest
import torch

from fg2u.torch import FG2U, RGU, meta_objective
from fg2u_bench_lm import camels, models
from fg2u_bench_lm.tokenizer import train_tokenizer


def test_weight_model_nonnegative_zero_on_padding_and_initial_value():
    tok = train_tokenizer(["a b c d e f g h"] * 3, vocab_size=300, min_frequency=1)
    wm = models.build_weight_model("tiny", tok, n_positions=32, seed=0)
    ids = torch.randint(0, len(tok), (3, 10))
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[1, 6:] = 0
    mask[2, 2:] = 0
    w0 = wm(ids, mask)
    # zero-initialised last layer: softplus_β(0) = log(2)/β with β = 3 on every real token
    assert torch.allclose(w0[mask.bool()], torch.full_like(w0[mask.bool()], math.log(2) / 3), atol=1e-7)
    with torch.no_grad():
        wm.head[2].weight.normal_(0, 5.0)
        wm.head[2].bias.fill_(-3.0)
    w = wm(ids, mask)
    assert w.shape == (3, 10)
    assert (w >= 0).all()
    assert (w[mask == 0] == 0).all()
    assert w[mask == 1].std() > 0  # weights now depend on the tokens


def test_inner_step_is_sgd_on_weighted_nll(tiny):
    tok, base, wm, spec, problem, _ = tiny
    phi = models.param_dict(wm)
    theta0 = problem.init(phi)
    batch = {k: v[0] for k, v in problem.inner_batches.items()}
    theta1 = problem.step(theta0, phi, batch)
    # independent oracle: autograd on a module copy with the same weighted loss written out by hand
    ids, mask = batch["input_ids"][None], batch["attention_mask"][None]
    with torch.no_grad():
        w = wm(ids, mask)
    logits = base(ids, attention_mask=mask).logits[0, :-1]
    nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none") * mask[0, 1:]
    loss = (w[0, 1:] * nll).sum() / mask[0, 1:].sum()
    names = [k for k, _ in base.named_parameters()]
    grads = torch.autograd.grad(loss, [p for _, p in base.named_parameters()])
    for name, g in zip(names, grads):
        expected = theta0[name] - spec.inner_lr * g
        assert torch.allclose(theta1[name], expected, atol=1e-6, rtol=1e-5), name


def test_outer_loss_at_base_has_zero_kl(tiny):
    tok, base, wm, spec, problem, _ = tiny
    theta0 = problem.init(models.param_dict(wm))
    ob = problem.outer_batch
    kl = camels.locality_kl(base, theta0, ob["loc_ids"], ob["loc_mask"], ob["base_logprobs"])
    assert abs(float(kl)) < 1e-6
    total = problem.outer_loss(theta0, None, ob)
    qa = camels.qa_nll(base, theta0, ob["qa_ids"], ob["qa_mask"], ob["answer_mask"])
    assert float(total) == pytest.approx(float(qa), abs=1e-5)


def test_fg2u_directional_derivative_matches_rgu(tiny):
    """Sharp oracle: for each explicit direction v, FG²U with b = 1 returns (∇L·v) v, and ∇L·v must equal
    the inner product of RGU's exact gradient with v up to float32 rounding of a sum of N terms."""
    _, _, wm, _, problem, _ = tiny
    phi = models.param_dict(wm)
    grad, aux = RGU()(problem, phi, None)
    g_flat = torch.cat([grad[k].reshape(-1) for k in phi])
    assert torch.isfinite(g_flat).all()
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        v = {k: (torch.randint(0, 2, p.shape, generator=gen) * 2 - 1).to(p.dtype) for k, p in phi.items()}
        est, aux_f = FG2U().with_directions(problem, phi, {k: x[None] for k, x in v.items()})
        v_flat = torch.cat([v[k].reshape(-1) for k in phi])
        e_flat = torch.cat([est[k].reshape(-1) for k in phi])
        n = v_flat.numel()
        d_fwd = float(e_flat.double() @ v_flat.double()) / n  # est = d·v and v·v = N for Rademacher v
        d_rev = float(g_flat.double() @ v_flat.double())
        # natural scale of ∇L·v for Rademacher v is ‖∇L‖₂ (its standard deviation over v); both sides are
        # float32 computations of the same number, so they agree to u·(amplification) relative to that
        # scale, with u = 1.2e-7 and an amplification well under 1e3 for a 2-step unroll
        tol = 1e3 * 1.2e-7 * float(g_flat.norm())
        assert abs(d_fwd - d_rev) <= tol, (d_fwd, d_rev, tol)
        assert abs(d_rev) > 20 * tol  # the check is not vacuous
        assert torch.allclose(e_flat.double(), d_fwd * v_flat.double(), rtol=1e-6, atol=0)
        assert float(aux_f.outer_loss) == pytest.approx(float(aux.outer_loss), rel=1e-5)


def test_meta_gradient_matches_finite_difference(tiny):
    """RGU through our problem against a central difference of L along a direction (float64 copy)."""
    _, _, wm, _, problem, _ = tiny
    phi = models.param_dict(wm)
    objective = meta_objective(problem)
    grad, _ = RGU()(problem, phi, None)
    gen = torch.Generator().manual_seed(1)
    v = {k: torch.randn(p.shape, generator=gen) for k, p in phi.items()}
    v_norm = math.sqrt(sum(float((x**2).sum()) for x in v.values()))
    v = {k: x / v_norm for k, x in v.items()}
    eps = 1e-2
    with torch.no_grad():
        plus = float(objective({k: p + eps * v[k] for k, p in phi.items()}))
        minus = float(objective({k: p - eps * v[k] for k, p in phi.items()}))
    fd = (plus - minus) / (2 * eps)
    exact = sum(float((grad[k] * v[k]).sum()) for k in phi)
    # O(eps²) truncation + float32 rounding of L (|L|·u/eps ≈ 1e-4); both well under 5% of |exact| here
    assert fd == pytest.approx(exact, rel=0.05, abs=1e-4)


def test_local_model_directory_is_used(tmp_path):
    """A saved transformers model folder (weights + tokenizer) is loaded instead of a fresh model."""
    from fg2u_bench_lm.tokenizer import load_local_tokenizer

    tok = train_tokenizer(["alpha beta gamma delta"] * 4, vocab_size=280, min_frequency=1)
    model = models.build_base_model("tiny", tok, n_positions=32, seed=3)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    tok2 = load_local_tokenizer(tmp_path)
    assert tok2("alpha beta")["input_ids"] == tok("alpha beta")["input_ids"]
    loaded = models.build_base_model(tmp_path, tok2)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    wm = models.build_weight_model(tmp_path, tok2)
    assert wm.backbone.config.n_embd == model.config.n_embd
    with pytest.raises(FileNotFoundError, match="model directory"):
        load_local_tokenizer(tmp_path / "missing")


def test_weight_model_from_the_base_model_and_frozen_backbone(tiny):
    """backbone="base" copies the base LM's transformer; "base-frozen" meta-learns the head only,
    "base-frozen-readout" its last layer only."""
    tok, base, _, spec, _, splits = tiny
    wm = models.build_weight_model("tiny", tok, n_positions=64, seed=3, backbone="base", base=base)
    for k, v in base.transformer.state_dict().items():
        assert torch.equal(wm.backbone.state_dict()[k], v), k
    frozen = models.build_weight_model("tiny", tok, n_positions=64, seed=3, backbone="base-frozen", base=base)
    learned = [k for k, p in frozen.named_parameters() if p.requires_grad]
    assert learned and all(k.startswith("head.") for k in learned)  # φ = the head (the trial learns these)
    readout = models.build_weight_model("tiny", tok, n_positions=64, seed=3, backbone="base-frozen-readout", base=base)
    learned = [k for k, p in readout.named_parameters() if p.requires_grad]
    assert learned == ["head.2.weight", "head.2.bias"]  # the last Linear(128, 1) only: 129 meta-parameters
    assert sum(readout.get_parameter(k).numel() for k in learned) == 129
    with pytest.raises(ValueError, match="pass base="):
        models.build_weight_model("tiny", tok, n_positions=64, backbone="base")
    with pytest.raises(ValueError, match="backbone must be one of"):
        models.build_weight_model("tiny", tok, n_positions=64, backbone="pretrained", base=base)
