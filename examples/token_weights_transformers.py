"""Per-token loss weights of a small transformers causal LM (GPT-2 architecture), in PyTorch with FG²U.

A tiny GPT-2 is built from a ``GPT2Config`` (random init: nothing is downloaded) with
``attn_implementation="eager"``: forward-mode AD goes through the plain attention, not through PyTorch's fused
``scaled_dot_product_attention`` kernels (transformers' default ``"sdpa"`` picks one of them, on CPU too, and
FG²U then stops with an error that names this fix; ``--attn-implementation sdpa`` shows it).

Data (synthetic, no download): two toy "languages" over V = 32 tokens, A: t_{k+1} = (5 t_k + 3) mod V and
B: t_{k+1} = (3 t_k + 1) mod V, each sequence from a random start. The training batch mixes A and B sequences,
the validation set is language A. φ holds one weight logit per training token (N = sequences × (length − 1),
the CaMeLS parametrisation); the inner problem is T SGD steps on the sigmoid(φ)-weighted next-token loss, the
outer objective the loss on the validation sequences. Meta-training φ with FG²U raises the weights of the A
tokens relative to the B tokens.

    python examples/token_weights_transformers.py
    python examples/token_weights_transformers.py --attn-implementation sdpa    # the clear error

Prints the cosine between the FG²U estimate and the exact (RGU) meta-gradient at the initial φ, the validation
loss before and after meta-training, and the mean learned weight of the A and of the B tokens.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is built from a config: nothing to fetch

import torch  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

import fg2u  # noqa: E402
import fg2u.torch as ft  # noqa: E402

VOCAB = 32


def language(num: int, length: int, a: int, c: int, generator: torch.Generator) -> torch.Tensor:
    """``num`` sequences t_{k+1} = (a t_k + c) mod V from random starts, shape (num, length)."""
    seq = torch.empty(num, length, dtype=torch.long)
    seq[:, 0] = torch.randint(0, VOCAB, (num,), generator=generator)
    for k in range(1, length):
        seq[:, k] = (a * seq[:, k - 1] + c) % VOCAB
    return seq


def token_nll(model_fn, params, ids: torch.Tensor) -> torch.Tensor:
    """Next-token negative log-likelihood per position, shape (sequences, length − 1)."""
    logits = model_fn(params, input_ids=ids).logits[:, :-1]
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1), reduction="none")
    return nll.reshape(ids.shape[0], -1)


def make_problem(model, train, val, inner_steps: int, inner_lr: float) -> fg2u.UnrolledProblem:
    f = ft.functional_model(model)  # f(params, **inputs) = model(**inputs) with the parameters replaced

    def inner_loss(params, phi, batch):
        return torch.mean(torch.sigmoid(phi) * token_nll(f, params, train))  # φ: one logit per training token

    init, step = ft.optim_transition(inner_loss, ft.optim.sgd(inner_lr), ft.module_params(model))
    outer_loss = lambda state, phi, batch: token_nll(f, state.params, val).mean()  # noqa: E731
    return fg2u.UnrolledProblem(init=init, step=step, outer_loss=outer_loss, num_steps=inner_steps)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meta-steps", type=int, default=10)
    p.add_argument("--inner-steps", type=int, default=8)
    p.add_argument("--directions", type=int, default=8, help="b, random tangents per FG²U estimate")
    p.add_argument("--sequences", type=int, default=8, help="training sequences (half A, half B)")
    p.add_argument("--length", type=int, default=12)
    p.add_argument("--inner-lr", type=float, default=0.3)
    p.add_argument("--meta-lr", type=float, default=0.1)
    p.add_argument("--attn-implementation", default="eager", help='"eager" (default) or "sdpa" (shows the error)')
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=args.length,
        n_embd=32,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,  # no dropout: the inner loop must be a deterministic function of φ
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        initializer_range=0.1,  # larger than GPT-2's 0.02, so that a few SGD steps learn something
        attn_implementation=args.attn_implementation,
    )
    model = GPT2LMHeadModel(config).eval()
    half = args.sequences // 2
    train = torch.cat([language(half, args.length, 5, 3, gen), language(args.sequences - half, args.length, 3, 1, gen)])
    val = language(16, args.length, 5, 3, gen)  # language A only
    problem = make_problem(model, train, val, args.inner_steps, args.inner_lr)

    phi = torch.zeros(args.sequences, args.length - 1)  # every weight sigmoid(0) = 0.5
    estimator = ft.FG2U(num_directions=args.directions)
    g_exact, aux = ft.RGU()(problem, phi, None)
    g_fg2u, _ = estimator(problem, phi, gen)
    cos = float(torch.nn.functional.cosine_similarity(g_fg2u.flatten(), g_exact.flatten(), dim=0))
    before = float(aux.outer_loss)

    phi = phi.clone().requires_grad_(True)
    meta_opt = torch.optim.Adam([phi], lr=args.meta_lr)
    for _ in range(args.meta_steps):
        g, _ = estimator(problem, phi.detach(), gen)
        phi.grad = g
        meta_opt.step()
    after = float(ft.meta_objective(problem)(phi))
    weights = torch.sigmoid(phi.detach())

    print(f"meta-gradient cosine to RGU: {cos:.4f}  (FG2U, b = {args.directions}, N = {phi.numel()})")
    print(f"outer loss before: {before:.6f}")
    print(f"outer loss after: {after:.6f}")
    print(
        f"mean learned weight: A tokens {float(weights[:half].mean()):.3f}, B tokens {float(weights[half:].mean()):.3f}"
    )
    return {"cosine": cos, "before": before, "after": after}


if __name__ == "__main__":
    main()
