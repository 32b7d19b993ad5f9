"""Shared fixtures of the bench-lm tests: one torch thread, and a tiny CaMeLS problem (tokenizer, base and
weight models, a 2-step task, the streams)."""

import random

import pytest
import torch

from fg2u_bench_lm import camels, data, models
from fg2u_bench_lm.tokenizer import train_tokenizer


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: several times faster than two on a shared, oversubscribed CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    splits = data.make_synthetic_splits(
        num_qa_tune=0, num_meta_train=6, num_meta_val=0, num_test=0, num_locality=3, seed=0, questions_per_document=2
    )
    tok = train_tokenizer(splits.all_texts(), vocab_size=300, min_frequency=1)
    base = models.build_base_model("tiny", tok, n_positions=64, seed=0)
    wm = models.build_weight_model("tiny", tok, n_positions=64, seed=1)
    # non-zero last layer so that every parameter of φ influences the weights
    with torch.no_grad():
        wm.head[2].weight.normal_(0, 0.5)
        wm.head[2].bias.fill_(0.1)
    spec = camels.CamelsSpec(
        num_steps=2,
        inner_lr=0.5,
        kl_coef=0.1,
        max_doc_tokens=28,
        max_qa_tokens=20,
        questions_per_step=2,
        locality_texts=2,
    )
    problem = camels.make_task(
        base, wm, models.param_dict(base), tok, splits.meta_train, splits.locality, spec, random.Random(0)
    )
    return tok, base, wm, spec, problem, splits
