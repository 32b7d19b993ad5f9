"""Benchmark configurations, by name (:data:`CONFIG_NAMES`):

* ``smoke`` — seconds; tests and the regression check only (F1 is meaningless).
* ``cpu`` — the main job (``nox -s bench_lm``): tiny GPT-2 base and weight models pre-trained here on the
  sparse-facts stream, T = 6, 150 meta steps × 2 estimates, Adam 1e-3; minutes per seed on one core.
* ``cpu-warmup`` — phase 1 of the paper's two-phase protocol at CPU size: ``cpu`` with RGU at T = 16, the
  largest T whose meta-gradient fits the 256 MiB budget (``--memory-sweep``); saves the learned weight model
  per seed (``<out>/weights/``) for phase 2.
* ``cpu-two-phase`` — phase 2: FG²U with the paper's 8 directions and Adam 2.5e-6 (Table F.2; the
  authors' ``conf/task/train.yaml``: ``num_vs 8``, ``grad_acc_steps 32``, ``outer_lr 2.5e-6``) at T = 24
  (``--inner-steps 48 --meta-steps 5`` for T = 48), warm-started from the ``cpu-warmup`` weights of the same
  seed (``--warm-start``). Cut to this machine: 8 accumulated estimates (paper 32) and 10 meta steps at T = 24,
  about 6 CPU-minutes per seed (the README's two-phase section).
* ``paper`` — the (FG)²U paper's Table F.2 (phase 1: RGU at T = 6); ``paper-two-phase`` its phase 2
  (FG²U at T = 24, 12 directions × 32, Adam 2.5e-6). They need real data or the synthetic stream at
  scale, distilgpt2-shaped models and a GPU-class machine.

Every setting applies to every method of a run (no estimator-dependent switch): T, the meta learning
rate, the accumulation and the carried base model are the config's (flags ``--inner-steps``,
``--outer-lr``, ``--grad-accum``, ``--carry-reset`` override them); a forward-mode estimator's direction
count and chunk size are estimator settings (``fg2u:num_directions=8``), and the config's
``num_directions`` / ``chunk_size`` only fill in what a spec leaves out (:meth:`LMConfig.presets`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fg2u_bench_lm.camels import CamelsSpec

__all__ = ["LMConfig", "CONFIGS", "CONFIG_NAMES", "get_config"]

_FORWARD_MODE = ("fg2u", "fg2u_zo", "hybrid")


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Every knob of one benchmark run.

    Data: ``num_*`` documents per synthetic split, ``questions_per_document`` (None = all),
    ``vocab_size`` of the locally trained tokenizer; synthetic stream: ``stream`` (``"sparse"``: a few
    answer-bearing facts in distractor text; ``"dense"``: all-facts documents), ``facts_per_document``,
    ``distractor_sentences`` (min, max).
    Models: ``model_size`` (base) / ``weight_model_size`` — a :data:`fg2u_bench_lm.models.MODEL_SIZES` key;
    ``n_positions`` context length; ``weight_backbone`` — ``"fresh"`` (random init), ``"base"`` (a copy of
    the pre-trained base LM), ``"base-frozen"`` (that copy fixed; φ = the head) or ``"base-frozen-readout"``
    (φ = the head's last layer, 129 parameters), see :func:`fg2u_bench_lm.models.build_weight_model`.
    Pre-training: ``pretrain_steps``, ``pretrain_lr``, ``pretrain_batch``.
    Meta-training (every method alike): ``spec`` (:class:`CamelsSpec`: T = ``spec.num_steps``, inner lr η,
    KL coefficient, token and question counts), ``meta_steps`` Adam steps with ``outer_lr`` on the mean of
    ``grad_accum`` estimates clipped to global norm ``max_grad_norm``; ``carry_reset`` R (None: every task
    starts from the pre-trained base model; R: the base model is carried across meta steps and reset every R
    documents, the paper's protocol). ``num_directions`` / ``chunk_size``: presets of the forward-mode
    estimators (a spec's own settings win). ``warm_start``: the config whose saved weights a run starts
    from (``--warm-start`` names the files); ``save_weights``: save each run's learned weight model.
    Anytime curve: the validation meta-objective on ``validation_tasks`` fixed tasks of
    ``validation_num_steps`` documents (None: T) from the meta-validation stream, at ``curve_points`` meta
    steps from 0 to ``meta_steps``.
    Evaluation: adapt on the test stream in chunks of ``eval_chunk`` documents with ``eval_optimizer`` at
    ``eval_lr`` and, with ``eval_sgd_lr``, a second time with SGD at that lr; answer up to
    ``max_new_tokens`` greedily; ``num_eval_docs`` caps the test documents (None = all).
    Memory sweep (``--memory-sweep``): one meta-gradient at each T of ``memory_steps``, against
    ``memory_budget_bytes``.
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
    meta_steps: int
    grad_accum: int
    outer_lr: float
    num_directions: int
    chunk_size: int | None
    eval_lr: float
    eval_optimizer: str
    eval_chunk: int
    max_new_tokens: int
    num_eval_docs: int | None
    memory_steps: tuple[int, ...]
    memory_budget_bytes: int
    stream: str = "sparse"
    facts_per_document: int = 2
    distractor_sentences: tuple[int, int] = (6, 8)
    eval_sgd_lr: float | None = None
    max_grad_norm: float | None = 1.0
    carry_reset: int | None = None
    validation_tasks: int = 4
    validation_num_steps: int | None = None
    curve_points: int = 7
    weight_backbone: str = "fresh"
    warm_start: str | None = None
    save_weights: bool = False
    default_methods: tuple[str, ...] = ("base", "uniform", "oracle", "rgu", "rgu_checkpointed", "fg2u")

    def __post_init__(self) -> None:
        for name in ("meta_steps", "grad_accum", "num_directions", "validation_tasks", "eval_chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.spec.num_steps < 1:
            raise ValueError(f"inner_steps (T) must be an integer >= 1, got {self.spec.num_steps!r}")
        if not self.outer_lr > 0:
            raise ValueError(f"outer_lr must be > 0, got {self.outer_lr!r}")
        if not self.eval_lr > 0:
            raise ValueError(f"eval_lr must be > 0, got {self.eval_lr!r}")
        if self.carry_reset is not None and self.carry_reset < 1:
            raise ValueError(f"carry_reset must be None or an integer >= 1 (documents), got {self.carry_reset!r}")
        if self.curve_points < 6:
            raise ValueError(f"curve_points must be >= 6 (an anytime curve), got {self.curve_points!r}")
        if self.eval_optimizer not in ("adam", "sgd"):
            raise ValueError(f"eval_optimizer must be 'adam' or 'sgd', got {self.eval_optimizer!r}")

    @property
    def inner_steps(self) -> int:
        """T, documents (inner SGD steps) per meta-training task."""
        return self.spec.num_steps

    @property
    def validation_spec(self) -> CamelsSpec:
        """The tasks of the validation meta-objective (T = ``validation_num_steps`` or the config's T)."""
        return dataclasses.replace(self.spec, num_steps=self.validation_num_steps or self.spec.num_steps)

    def replace(self, **changes: Any) -> LMConfig:
        """The config with fields changed; ``inner_steps`` sets ``spec.num_steps`` (T)."""
        if "inner_steps" in changes:
            changes["spec"] = dataclasses.replace(changes.get("spec", self.spec), num_steps=changes.pop("inner_steps"))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON (``spec`` nested); :meth:`from_dict` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LMConfig:
        fields = dict(data)
        fields["spec"] = CamelsSpec(**fields["spec"])
        for name in ("memory_steps", "distractor_sentences", "default_methods"):
            fields[name] = tuple(fields[name])
        return cls(**fields)

    def presets(self) -> dict[str, dict[str, Any]]:
        """Settings of the forward-mode estimators that a spec leaves out (``num_directions``, ``chunk_size``)."""
        return {name: {"num_directions": self.num_directions, "chunk_size": self.chunk_size} for name in _FORWARD_MODE}

    def problem_settings(self) -> dict[str, Any]:
        """What defines the F1 task (every method of every config on the same problem competes): data,
        base model and its pre-training, document and question lengths, the evaluation protocol."""
        return {
            "model_size": self.model_size,
            "n_positions": self.n_positions,
            "vocab_size": self.vocab_size,
            "pretrain_steps": self.pretrain_steps,
            "pretrain_lr": self.pretrain_lr,
            "pretrain_batch": self.pretrain_batch,
            "num_qa_tune": self.num_qa_tune,
            "num_meta_train": self.num_meta_train,
            "num_meta_val": self.num_meta_val,
            "num_test": self.num_test,
            "num_locality": self.num_locality,
            "questions_per_document": self.questions_per_document,
            "max_doc_tokens": self.spec.max_doc_tokens,
            "max_qa_tokens": self.spec.max_qa_tokens,
            "eval_optimizer": self.eval_optimizer,
            "eval_lr": self.eval_lr,
            "eval_sgd_lr": self.eval_sgd_lr,
            "eval_chunk": self.eval_chunk,
            "max_new_tokens": self.max_new_tokens,
            "num_eval_docs": self.num_eval_docs,
            "decoding": "greedy",
        }

    def meta_settings(self) -> dict[str, Any]:
        """How the weight model is meta-trained (the config's settings besides the problem's)."""
        return {
            "inner_steps": self.spec.num_steps,
            "inner_lr": self.spec.inner_lr,
            "kl_coef": self.spec.kl_coef,
            "questions_per_step": self.spec.questions_per_step,
            "locality_texts": self.spec.locality_texts,
            "weight_model_size": self.weight_model_size,
            "weight_backbone": self.weight_backbone,
            "meta_steps": self.meta_steps,
            "grad_accum": self.grad_accum,
            "outer_lr": self.outer_lr,
            "max_grad_norm": self.max_grad_norm,
            "carry_reset": self.carry_reset,
            "validation_tasks": self.validation_tasks,
            "validation_num_steps": self.validation_num_steps or self.spec.num_steps,
        }


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
    num_directions=2,
    chunk_size=None,
    meta_steps=2,
    grad_accum=1,
    outer_lr=1e-3,
    eval_lr=3e-3,
    eval_optimizer="adam",
    eval_chunk=4,
    max_new_tokens=4,
    num_eval_docs=4,
    memory_steps=(1, 2),
    memory_budget_bytes=1 * _GiB,
    eval_sgd_lr=0.3,
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
    num_directions=4,
    chunk_size=None,
    meta_steps=150,
    grad_accum=2,
    outer_lr=1e-3,
    eval_lr=3e-3,
    eval_optimizer="adam",
    eval_chunk=6,
    max_new_tokens=12,
    num_eval_docs=60,
    memory_steps=(1, 2, 4, 6, 8, 12, 16, 24, 32, 48),
    memory_budget_bytes=256 * 2**20,
    eval_sgd_lr=0.3,
    validation_tasks=4,
    weight_backbone="base",
)

CPU_WARMUP = CPU.replace(
    name="cpu-warmup",
    inner_steps=16,
    validation_num_steps=16,
    save_weights=True,
    default_methods=("rgu",),
)

CPU_TWO_PHASE = CPU.replace(
    name="cpu-two-phase",
    inner_steps=24,
    validation_num_steps=16,
    num_directions=8,
    grad_accum=8,
    outer_lr=2.5e-6,
    meta_steps=10,
    warm_start="cpu-warmup",
    default_methods=("fg2u",),
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
    num_directions=12,
    chunk_size=4,
    meta_steps=2000,
    grad_accum=32,
    outer_lr=2.5e-6,
    eval_lr=2.5e-5,
    eval_optimizer="adam",
    eval_chunk=24,
    max_new_tokens=16,
    num_eval_docs=None,
    memory_steps=(1, 2, 4, 6, 8, 12, 16, 24),
    memory_budget_bytes=40 * _GiB,
    save_weights=True,
    default_methods=("base", "uniform", "rgu"),
)

PAPER_TWO_PHASE = PAPER.replace(
    name="paper-two-phase",
    inner_steps=24,
    validation_num_steps=6,
    save_weights=False,
    warm_start="paper",
    default_methods=("fg2u",),
)

CONFIGS = {c.name: c for c in (SMOKE, CPU, CPU_WARMUP, CPU_TWO_PHASE, PAPER, PAPER_TWO_PHASE)}
CONFIG_NAMES = tuple(CONFIGS)


def get_config(name: str) -> LMConfig:
    """The named configuration (:data:`CONFIG_NAMES`)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose one of {list(CONFIG_NAMES)}")
    return CONFIGS[name]
