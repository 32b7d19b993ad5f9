"""Benchmark configurations: ``smoke`` (seconds), ``cpu`` (minutes on a laptop CPU), ``paper`` (Table F.2).

``paper`` needs real data (SQuAD / StreamingQA files, ``--data``) or the synthetic stream at paper
scale, distilgpt2-shaped models and a GPU-class machine; its values follow the CaMeLS / (FG)²U settings
(inner SGD lr 5e-4, T = 6 for RGU, T = 24 / 48 for FG²U with 12 Rademacher directions, gradient
accumulation 32, outer Adam lr 2.5e-6, KL coefficient 0.1, base pre-training lr 2.5e-5, evaluation
with Adam lr 2.5e-5, batch 1, one pass, up to 16 new tokens).
"""

from __future__ import annotations

import dataclasses

from fg2u_bench_lm.camels import CamelsSpec

__all__ = ["LMConfig", "CONFIGS", "get_config"]


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Every knob of one benchmark run.

    Data: ``num_*`` documents per synthetic split, ``questions_per_document`` (None = all),
    ``vocab_size`` of the locally trained tokenizer.
    Models: ``model_size`` (base) / ``weight_model_size`` — a :data:`fg2u_bench_lm.models.MODEL_SIZES`
    key or a local transformers model directory; ``n_positions`` context length.
    Pre-training: ``pretrain_steps``, ``pretrain_lr``, ``pretrain_batch``.
    Meta-training: ``spec`` (:class:`CamelsSpec`, T for RGU), ``fg2u_num_steps`` (T for FG²U),
    ``fg2u_directions`` (b), ``fg2u_chunk_size``, ``meta_steps``, ``grad_accum``, ``outer_lr``.
    Evaluation: ``eval_lr``, ``eval_optimizer``, ``eval_chunk`` (documents per adaptation stream),
    ``max_new_tokens``, ``num_eval_docs`` (cap on test documents; None = all); ``eval_sgd_lr`` adds a
    second evaluation with SGD at that learning rate (None: Adam only).
    Synthetic stream: ``stream`` (``"sparse"``: a few answer-bearing facts in distractor text, the
    default; ``"dense"``: the old all-facts documents), ``facts_per_document``, ``distractor_sentences``
    (min, max), ``oracle_scope`` (``"answer"``: the oracle weights the answer tokens; ``"fact"``: whole
    fact sentences).
    Paper options: ``rgu_carry_reset`` / ``fg2u_carry_reset`` (carry the base model across meta steps,
    reset every R documents; None = reset every meta step); ``fg2u_outer_lr`` / ``fg2u_grad_accum``
    (None = same as RGU). ``validate_every`` meta steps the validation meta-objective on
    ``validation_tasks`` fixed tasks is recorded (the convergence curve). ``weight_backbone``: the weight
    model's backbone, ``"fresh"`` (random init, meta-learned), ``"base"`` (a copy of the pre-trained base
    LM, meta-learned), ``"base-frozen"`` (that copy fixed; φ = the head only) or ``"base-frozen-readout"``
    (φ = the head's last layer only, 129 parameters), see
    :func:`fg2u_bench_lm.models.build_weight_model`.
    Memory sweep: ``memory_model_size``, ``memory_rgu_steps`` (tried in order until
    ``memory_budget_bytes`` is exceeded), ``memory_fg2u_steps``.
    """

    name: str
    num_qa_tune: int
    num_meta_train: int
    num_meta_val: int
    num_test: int
    num_locality: int
    questions_per_document: int | None
    vocab_size: int
    model_size: str
    weight_model_size: str
    n_positions: int
    pretrain_steps: int
    pretrain_lr: float
    pretrain_batch: int
    spec: CamelsSpec
    fg2u_num_steps: int
    fg2u_directions: int
    fg2u_chunk_size: int | None
    meta_steps: int
    grad_accum: int
    outer_lr: float
    eval_lr: float
    eval_optimizer: str
    eval_chunk: int
    max_new_tokens: int
    num_eval_docs: int | None
    memory_model_size: str
    memory_rgu_steps: tuple[int, ...]
    memory_fg2u_steps: tuple[int, ...]
    memory_budget_bytes: int
    stream: str = "sparse"
    facts_per_document: int = 2
    distractor_sentences: tuple[int, int] = (6, 8)
    oracle_scope: str = "answer"
    eval_sgd_lr: float | None = None
    rgu_carry_reset: int | None = None
    fg2u_carry_reset: int | None = None
    validate_every: int = 10
    validation_tasks: int = 4
    fg2u_outer_lr: float | None = None
    fg2u_grad_accum: int | None = None
    weight_backbone: str = "fresh"

    def replace(self, **changes) -> LMConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_GiB = 1024**3

SMOKE = LMConfig(
    name="smoke",
    num_qa_tune=40,
    num_meta_train=12,
    num_meta_val=4,
    num_test=4,
    num_locality=6,
    questions_per_document=2,
    vocab_size=512,
    model_size="tiny",
    weight_model_size="tiny",
    n_positions=192,
    pretrain_steps=6,
    pretrain_lr=3e-3,
    pretrain_batch=8,
    spec=CamelsSpec(
        num_steps=2,
        inner_lr=0.3,
        kl_coef=0.1,
        max_doc_tokens=160,
        max_qa_tokens=32,
        questions_per_step=4,
        locality_texts=2,
    ),
    fg2u_num_steps=2,
    fg2u_directions=2,
    fg2u_chunk_size=None,
    meta_steps=2,
    grad_accum=1,
    outer_lr=1e-3,
    eval_lr=3e-3,
    eval_optimizer="adam",
    eval_chunk=4,
    max_new_tokens=4,
    num_eval_docs=4,
    memory_model_size="tiny",
    memory_rgu_steps=(1, 2),
    memory_fg2u_steps=(2,),
    memory_budget_bytes=1 * _GiB,
    eval_sgd_lr=0.3,
    validate_every=1,
    validation_tasks=1,
)

CPU = LMConfig(
    name="cpu",
    num_qa_tune=600,
    num_meta_train=300,
    num_meta_val=30,
    num_test=60,
    num_locality=60,
    questions_per_document=None,
    vocab_size=1024,
    model_size="tiny",
    weight_model_size="tiny",
    n_positions=192,
    pretrain_steps=1000,
    pretrain_lr=2e-3,
    pretrain_batch=16,
    spec=CamelsSpec(
        num_steps=6,
        inner_lr=0.3,
        kl_coef=0.1,
        max_doc_tokens=160,
        max_qa_tokens=32,
        questions_per_step=8,
        locality_texts=2,
    ),
    fg2u_num_steps=6,
    fg2u_directions=4,
    fg2u_chunk_size=None,
    meta_steps=150,
    grad_accum=2,
    outer_lr=1e-3,
    eval_lr=3e-3,
    eval_optimizer="adam",
    eval_chunk=6,
    max_new_tokens=12,
    num_eval_docs=60,
    memory_model_size="tiny",
    memory_rgu_steps=(1, 2, 4, 6, 8, 12, 16, 24, 32, 48),
    memory_fg2u_steps=(6, 24, 48),
    memory_budget_bytes=256 * 2**20,
    eval_sgd_lr=0.3,
    validate_every=10,
    validation_tasks=4,
    weight_backbone="base",
)

PAPER = LMConfig(
    name="paper",
    num_qa_tune=20000,
    num_meta_train=20000,
    num_meta_val=1000,
    num_test=1000,
    num_locality=2000,
    questions_per_document=None,
    vocab_size=8192,
    model_size="distilgpt2",
    weight_model_size="distilgpt2",
    n_positions=512,
    pretrain_steps=20000,
    pretrain_lr=2.5e-5,
    pretrain_batch=32,
    spec=CamelsSpec(
        num_steps=6,
        inner_lr=5e-4,
        kl_coef=0.1,
        max_doc_tokens=256,
        max_qa_tokens=64,
        questions_per_step=24,
        locality_texts=8,
    ),
    fg2u_num_steps=24,
    fg2u_directions=12,
    fg2u_chunk_size=4,
    meta_steps=2000,
    grad_accum=32,
    outer_lr=2.5e-6,
    eval_lr=2.5e-5,
    eval_optimizer="adam",
    eval_chunk=24,
    max_new_tokens=16,
    num_eval_docs=None,
    memory_model_size="distilgpt2",
    memory_rgu_steps=(1, 2, 4, 6, 8, 12, 16, 24),
    memory_fg2u_steps=(6, 24, 48),
    memory_budget_bytes=40 * _GiB,
)

CONFIGS = {c.name: c for c in (SMOKE, CPU, PAPER)}


def get_config(name: str) -> LMConfig:
    """The named configuration (``smoke``, ``cpu`` or ``paper``)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}")
    return CONFIGS[name]
