"""Gradient quality: how close an estimator's meta-gradient is to an exact reference (backend-agnostic).

The backend kernels ([`fg2u.jax.gradient_quality`][fg2u.jax.gradient_quality],
[`fg2u.torch.gradient_quality`][fg2u.torch.gradient_quality]) run each estimator ``num_repeats`` times with fresh random
keys (and, optionally, a fresh problem per repeat), flatten every estimate ĝ_r and the matching reference g_r (RGU by
default) to float64 vectors of length N, and hand them to [`summarize`][fg2u.quality.summarize], which computes per
repeat

    cosine_r         = ⟨ĝ_r, g_r⟩ / (‖ĝ_r‖ ‖g_r‖)      (0 when either vector is zero)
    relative_error_r = ‖ĝ_r − g_r‖ / ‖g_r‖
    norm_ratio_r     = ‖ĝ_r‖ / ‖g_r‖

and their mean and standard deviation over repeats (``ddof = 1`` when there are ≥ 2 repeats), plus the
memory and seconds per estimate the kernel measured. The result is a [`GradientQuality`][fg2u.quality.GradientQuality];
use [`format_table`][fg2u.quality.format_table] to print several and
[`GradientQuality.metrics`][fg2u.quality.GradientQuality.metrics] for a result record.

The protocol both backends share — the arguments (a fixed problem or ``make_problem`` with per-repeat
``inputs``), the reference loop, the timed repeats of each estimator with its state, and the progress bar —
is [`run_gradient_quality`][fg2u.quality.run_gradient_quality]; a backend supplies only its numeric kernel (a
[`QualityKernel`][fg2u.quality.QualityKernel]: compiling or warming up, memory measurement, array conversion).

For FG²U with b directions the variance is known in closed form
([`fg2u_expected_squared_error`][fg2u.quality.fg2u_expected_squared_error]): with Rademacher tangents E‖ĝ − g‖² = (N −
1)/b · ‖g‖², with Gaussian tangents (N + 1)/b · ‖g‖², so the expected relative squared error is about N/b and the cosine
to the exact gradient about √(b/N) when b ≪ N. Standard library and NumPy only (no JAX or PyTorch).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

import numpy as np

from fg2u.checks import check_positive_int
from fg2u.experiment.loop import progress as progress_bar
from fg2u.problem import BlackBoxProblem, UnrolledProblem

__all__ = [
    "estimator_label",
    "named_estimators",
    "is_stateful",
    "uses_key",
    "GradientQuality",
    "cosine",
    "relative_error",
    "norm_ratio",
    "summarize",
    "format_table",
    "to_pandas",
    "fg2u_expected_squared_error",
    "fg2u_expected_cosine",
    "problem_per_repeat",
    "Measurement",
    "EstimatorRun",
    "QualityKernel",
    "Choice",
    "Recommendation",
    "recommend",
    "run_gradient_quality",
]


def _vector(name: str, value: Any) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{name} is empty; pass the flattened meta-gradient (a vector with N ≥ 1 entries)")
    if not np.all(np.isfinite(array)):
        raise FloatingPointError(f"{name} contains NaN or inf; the estimate cannot be compared to the reference")
    return array


def _pair(estimate: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    est, ref = _vector("estimate", estimate), _vector("reference", reference)
    if est.shape != ref.shape:
        raise ValueError(
            f"estimate has {est.size} entries but the reference has {ref.size}; both must be "
            "flattened meta-gradients of the same φ"
        )
    return est, ref


def cosine(estimate: Any, reference: Any) -> float:
    """⟨ĝ, g⟩ / (‖ĝ‖‖g‖) of two flattened gradients (any array-likes of equal size); 0 if either is zero."""
    est, ref = _pair(estimate, reference)
    denominator = float(np.linalg.norm(est) * np.linalg.norm(ref))
    return float(est @ ref / denominator) if denominator > 0 else 0.0


def relative_error(estimate: Any, reference: Any) -> float:
    """‖ĝ − g‖ / ‖g‖ (inf when g = 0 and ĝ ≠ 0, 0 when both are zero)."""
    est, ref = _pair(estimate, reference)
    num, den = float(np.linalg.norm(est - ref)), float(np.linalg.norm(ref))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def norm_ratio(estimate: Any, reference: Any) -> float:
    """‖ĝ‖ / ‖g‖ (inf when g = 0 and ĝ ≠ 0, 1 when both are zero)."""
    est, ref = _pair(estimate, reference)
    num, den = float(np.linalg.norm(est)), float(np.linalg.norm(ref))
    if den == 0.0:
        return 1.0 if num == 0.0 else math.inf
    return num / den


@dataclasses.dataclass(frozen=True)
class GradientQuality:
    """Quality of one estimator's meta-gradient against a reference, over ``num_repeats`` repeats.

    Attributes:
      name: the estimator's label.
      reference: the reference's label (``"RGU"``, ``"FGU"`` …).
      num_repeats: R, the number of estimates compared (each with a fresh key / problem).
      meta_dim: N, the number of entries of the flattened meta-gradient.
      cosine_mean, cosine_std: mean and standard deviation (ddof = 1; 0 when R = 1) of the cosine.
      relative_error_mean, relative_error_std: of ‖ĝ − g‖/‖g‖.
      norm_ratio_mean, norm_ratio_std: of ‖ĝ‖/‖g‖.
      memory_bytes: memory of one estimate (``memory_measure`` says which: XLA compiled temp bytes in
        JAX, peak-RSS growth in torch), or None when not measured.
      memory_measure: how ``memory_bytes`` was measured.
      seconds_per_estimate: median wall-clock seconds of one estimate over the repeats (compilation
        excluded).
      compile_seconds: seconds spent compiling (JAX) before the first estimate, or None.
      cosines, relative_errors, norm_ratios: the per-repeat values.
      settings: free-form settings of the estimator (JSON-serialisable), for records.
    """

    name: str
    reference: str
    num_repeats: int
    meta_dim: int
    cosine_mean: float
    cosine_std: float
    relative_error_mean: float
    relative_error_std: float
    norm_ratio_mean: float
    norm_ratio_std: float
    memory_bytes: int | None
    memory_measure: str
    seconds_per_estimate: float
    compile_seconds: float | None = None
    # The per-repeat values stay out of the repr (R numbers each); str() prints a summary table.
    cosines: tuple[float, ...] = dataclasses.field(default=(), repr=False)
    relative_errors: tuple[float, ...] = dataclasses.field(default=(), repr=False)
    norm_ratios: tuple[float, ...] = dataclasses.field(default=(), repr=False)
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        """A small two-column table: the statistics (mean ± std over repeats), memory and time.

        Example::

            FG2U b=8 against RGU: 5 repeats, N = 64
              cosine          0.371 ± 0.095
              relative error  2.87 ± 0.86
              norm ratio      3.06 ± 1
              memory          4.56 KiB (XLA compiled temp bytes of one estimate (memory_analysis().temp_size_in_bytes))
              s / estimate    0.000516 (compilation 0.667 s)
        """
        compile_note = "" if self.compile_seconds is None else f" (compilation {self.compile_seconds:.3g} s)"
        memory = _format_bytes(self.memory_bytes, unit=None)
        rows = [
            ("cosine", f"{self.cosine_mean:.3f} ± {self.cosine_std:.3f}"),
            ("relative error", f"{self.relative_error_mean:.3g} ± {self.relative_error_std:.2g}"),
            ("norm ratio", f"{self.norm_ratio_mean:.3g} ± {self.norm_ratio_std:.2g}"),
            ("memory", memory if self.memory_bytes is None else f"{memory} ({self.memory_measure})"),
            ("s / estimate", f"{self.seconds_per_estimate:.3g}{compile_note}"),
        ]
        repeats = "1 repeat" if self.num_repeats == 1 else f"{self.num_repeats} repeats"
        head = f"{self.name} against {self.reference}: {repeats}, N = {self.meta_dim}"
        return "\n".join([head] + [f"  {label:<14}  {value}" for label, value in rows])

    def metrics(self) -> dict[str, float]:
        """Numeric fields as a flat dict for
        [`fg2u.experiment.records.make_record`][fg2u.experiment.records.make_record] (``metrics=``)."""
        out = {
            "cosine_mean": self.cosine_mean,
            "cosine_std": self.cosine_std,
            "relative_error_mean": self.relative_error_mean,
            "relative_error_std": self.relative_error_std,
            "norm_ratio_mean": self.norm_ratio_mean,
            "norm_ratio_std": self.norm_ratio_std,
            "seconds_per_estimate": self.seconds_per_estimate,
            "num_repeats": float(self.num_repeats),
            "meta_dim": float(self.meta_dim),
        }
        if self.memory_bytes is not None:
            out["memory_bytes"] = float(self.memory_bytes)
        if self.compile_seconds is not None:
            out["compile_seconds"] = self.compile_seconds
        return {k: float(v) for k, v in out.items() if math.isfinite(float(v))}

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def summarize(
    name: str,
    estimates: Sequence[Any],
    references: Sequence[Any] | Any,
    *,
    reference_name: str = "RGU",
    memory_bytes: int | None = None,
    memory_measure: str = "not measured",
    seconds: Sequence[float] | float = math.nan,
    compile_seconds: float | None = None,
    settings: dict[str, Any] | None = None,
) -> GradientQuality:
    """The [`GradientQuality`][fg2u.quality.GradientQuality] of ``estimates`` against ``references``.

    Args:
      name: label of the estimator.
      estimates: R flattened estimates ĝ_r (array-likes of N entries each).
      references: R matching references g_r, or a single reference used for every repeat (when the
        problem is the same in every repeat and only the random key changes).
      memory_bytes: the memory the backend measured, in bytes (see [`GradientQuality`][fg2u.quality.GradientQuality]).
      memory_measure: what that memory is (e.g. compiled temp bytes or RSS growth).
      seconds: per-estimate wall-clock seconds (a sequence: its median is kept, robust to a slow first
        call and to other processes on shared CPUs) or one value.
    """
    estimates = list(estimates)
    if not estimates:
        raise ValueError("estimates is empty: run the estimator at least once (num_repeats >= 1)")
    if isinstance(references, (list, tuple)):
        references = list(references)
        if len(references) != len(estimates):
            raise ValueError(
                f"got {len(estimates)} estimates but {len(references)} references; pass one "
                "reference per repeat or a single reference for all"
            )
    else:
        references = [references] * len(estimates)
    cos = tuple(cosine(e, r) for e, r in zip(estimates, references))
    rel = tuple(relative_error(e, r) for e, r in zip(estimates, references))
    ratio = tuple(norm_ratio(e, r) for e, r in zip(estimates, references))
    seconds_median = float(np.median(seconds)) if np.ndim(seconds) else float(cast(float, seconds))
    (cm, cs), (em, es), (rm, rs) = _mean_std(cos), _mean_std(rel), _mean_std(ratio)
    return GradientQuality(
        name=name,
        reference=reference_name,
        num_repeats=len(estimates),
        meta_dim=int(np.asarray(estimates[0]).size),
        cosine_mean=cm,
        cosine_std=cs,
        relative_error_mean=em,
        relative_error_std=es,
        norm_ratio_mean=rm,
        norm_ratio_std=rs,
        memory_bytes=None if memory_bytes is None else int(memory_bytes),
        memory_measure=memory_measure,
        seconds_per_estimate=seconds_median,
        compile_seconds=compile_seconds,
        cosines=cos,
        relative_errors=rel,
        norm_ratios=ratio,
        settings=dict(settings or {}),
    )


def _format_bytes(value: int | None, *, unit: str | None = "MiB") -> str:
    """``value`` bytes in ``unit`` (one unit down a table column), or the largest unit ≤ it when None."""
    if value is None:
        return "—"
    scales = {"GiB": 2**30, "MiB": 2**20, "KiB": 2**10, "B": 1}
    if unit is None:
        unit = next((u for u, scale in scales.items() if value >= scale), "B")
    return f"{value} B" if unit == "B" else f"{value / scales[unit]:.2f} {unit}"


def format_table(results: Iterable[GradientQuality]) -> str:
    """A Markdown table: estimator, cosine, relative error, norm ratio (mean ± std), memory, s/estimate."""
    lines = [
        "| estimator | cosine to reference | relative error | norm ratio | memory | s / estimate |",
        "|---|---|---|---|---|---|",
    ]
    for q in results:
        lines.append(
            f"| {q.name} | {q.cosine_mean:.3f} ± {q.cosine_std:.3f} | {q.relative_error_mean:.3g} ± "
            f"{q.relative_error_std:.2g} | {q.norm_ratio_mean:.3g} ± {q.norm_ratio_std:.2g} | "
            f"{_format_bytes(q.memory_bytes)} | {q.seconds_per_estimate:.3g} |"
        )
    return "\n".join(lines)


def to_pandas(results: GradientQuality | Iterable[GradientQuality]) -> Any:
    """A ``pandas.DataFrame`` with one row per estimator, indexed by its label.

    Columns: ``reference``, ``num_repeats``, ``meta_dim``, the mean and std of cosine, relative error and
    norm ratio, ``memory_bytes`` (NaN when not measured), ``memory_measure``, ``seconds_per_estimate`` and
    ``compile_seconds`` (NaN in torch). The per-repeat values and settings stay in
    [`GradientQuality`][fg2u.quality.GradientQuality].
    """
    try:
        # Imported here, not at the top: pandas is optional (the `leaderboard` extra), and `import fg2u`
        # must stay light (neither pandas nor a backend).
        import pandas as pd  # noqa: PLC0415
    except ImportError as err:
        raise ImportError('to_pandas needs pandas: pip install pandas (or "fg2u[leaderboard]")') from err
    items = [results] if isinstance(results, GradientQuality) else list(results)
    columns = [
        "reference",
        "num_repeats",
        "meta_dim",
        "cosine_mean",
        "cosine_std",
        "relative_error_mean",
        "relative_error_std",
        "norm_ratio_mean",
        "norm_ratio_std",
        "memory_bytes",
        "memory_measure",
        "seconds_per_estimate",
        "compile_seconds",
    ]
    rows = [{c: getattr(q, c) for c in columns} for q in items]
    frame = pd.DataFrame(rows, columns=columns, index=pd.Index([q.name for q in items], name="estimator"))
    return frame.astype({"memory_bytes": "float64", "compile_seconds": "float64"})


@dataclasses.dataclass(frozen=True)
class Choice:
    """One estimator's line of a [`Recommendation`][fg2u.quality.Recommendation].

    Attributes:
      name: the estimator's label.
      bias: ``"exact"``, ``"unbiased"`` or ``"biased"`` (the estimator's ``bias``).
      cosine: its mean cosine to the reference.
      memory_bytes, seconds: its measured memory (None: not measured) and seconds per estimate.
      score: progress per second, ``cosine² / seconds`` (module doc of [`recommend`][fg2u.quality.recommend]).
      fits: within the budgets.
      note: why it does not fit, or the cosine ceiling of a biased estimator.
    """

    name: str
    bias: str
    cosine: float
    memory_bytes: int | None
    seconds: float
    score: float
    fits: bool
    note: str


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """Estimators ranked by [`recommend`][fg2u.quality.recommend]: those that fit the budgets first, best score
    first; ``best`` is the first that fits (None when none does). ``str()`` prints a table."""

    choices: tuple[Choice, ...]
    memory_budget: int | None
    seconds_budget: float | None

    @property
    def best(self) -> Choice | None:
        return next((c for c in self.choices if c.fits), None)

    def __str__(self) -> str:
        budget = ", ".join(
            part
            for part in (
                None if self.memory_budget is None else f"memory ≤ {_format_bytes(self.memory_budget, unit=None)}",
                None if self.seconds_budget is None else f"≤ {self.seconds_budget:.3g} s per estimate",
            )
            if part
        )
        lines = [
            f"estimators ranked by cosine² per second{' within ' + budget if budget else ''}:",
            "| rank | estimator | bias | cosine | memory | s / estimate | cosine² / s | note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for i, c in enumerate(self.choices, start=1):
            rank = str(i) if c.fits else "—"
            lines.append(
                f"| {rank} | {c.name} | {c.bias} | {c.cosine:.3f} | {_format_bytes(c.memory_bytes, unit=None)} | "
                f"{c.seconds:.3g} | {c.score:.3g} | {c.note} |"
            )
        return "\n".join(lines)


def recommend(
    results: Sequence[GradientQuality],
    estimators: Any,
    *,
    memory_budget: int | None = None,
    seconds_budget: float | None = None,
) -> Recommendation:
    """Ranks measured estimators by progress per second within a memory and time budget.

    Progress per second is ``cosine² / seconds per estimate``. For an exact estimator that is
    ``1 / seconds``. For an unbiased one it is the rate that averaging buys: the mean of m independent
    estimates with per-estimate cosine c has cos² ≈ m c² while m c² ≪ 1 (for FG²U, c² ≈ b/N grows linearly in
    the directions, i.e. in the time spent), so ``c²/s`` compares it with the exact ones at equal time. A biased
    estimator's cosine does not improve with averaging: its score is shown, but its note names the ceiling
    (its cosine) — prefer it only when it is good enough as it is.

    Args:
      results: [`GradientQuality`][fg2u.quality.GradientQuality] of each estimator, from
        [`fg2u.jax.gradient_quality`][fg2u.jax.gradient_quality] or [`fg2u.torch.gradient_quality`][fg2u.torch.gradient_quality].
      estimators: the same estimators passed to ``gradient_quality`` (a list or a ``{label: estimator}`` mapping),
        for their ``bias``.
      memory_budget: bytes of the same measure as the results' memory (XLA compiled temp bytes in JAX,
        peak-RSS growth in torch); None: unlimited. An estimator whose memory was not measured fits.
      seconds_budget: seconds per estimate; None: unlimited.

    Examples:
      >>> import fg2u.quality as fq
      >>> class Est:  # stands for measured estimators: only their bias is read
      ...     def __init__(self, bias): self.bias = bias
      ...     def __call__(self, problem, phi, key): raise NotImplementedError
      >>> def q(name, cosine, memory, seconds):
      ...     return fq.GradientQuality(name, "RGU", 1, 10, cosine, 0.0, 0.0, 0.0, 1.0, 0.0, memory, "xla", seconds)
      >>> results = [q("RGU", 1.0, 1000, 0.2), q("FG2U", 0.3, 100, 0.05), q("TRGU", 0.9, 300, 0.1)]
      >>> ranking = fq.recommend(results, {"RGU": Est("exact"), "FG2U": Est("unbiased"), "TRGU": Est("biased")},
      ...                        memory_budget=500)
      >>> ranking.best.name, [c.name for c in ranking.choices]
      ('TRGU', ['TRGU', 'FG2U', 'RGU'])
      >>> ranking.choices[0].note
      'biased: averaging does not raise its cosine above ≈ 0.9'
    """
    biases = {label: getattr(est, "bias", "biased") for label, est in named_estimators(estimators)}
    if memory_budget is not None and not memory_budget > 0:
        raise ValueError(f"memory_budget must be a positive number of bytes or None, got {memory_budget!r}")
    if seconds_budget is not None and not seconds_budget > 0:
        raise ValueError(f"seconds_budget must be a positive number of seconds or None, got {seconds_budget!r}")
    choices = []
    for q in results:
        bias = biases.get(q.name)
        if bias is None:
            raise ValueError(f"no estimator labelled {q.name!r} among {sorted(biases)}; pass the estimators measured")
        cosine = max(q.cosine_mean, 0.0)
        score = cosine**2 / q.seconds_per_estimate if q.seconds_per_estimate > 0 else math.inf
        reasons = []
        if memory_budget is not None and q.memory_bytes is not None and q.memory_bytes > memory_budget:
            reasons.append(f"memory {_format_bytes(q.memory_bytes, unit=None)} over the budget")
        if seconds_budget is not None and q.seconds_per_estimate > seconds_budget:
            reasons.append(f"{q.seconds_per_estimate:.3g} s over the budget")
        note = "; ".join(reasons)
        if not reasons and bias == "biased":
            note = f"biased: averaging does not raise its cosine above ≈ {q.cosine_mean:.2g}"
        choices.append(
            Choice(q.name, bias, q.cosine_mean, q.memory_bytes, q.seconds_per_estimate, score, not reasons, note)
        )
    ranked = sorted(choices, key=lambda c: (not c.fits, -c.score))
    return Recommendation(tuple(ranked), memory_budget, seconds_budget)


def fg2u_expected_squared_error(
    grad_norm_sq: float, meta_dim: int, num_directions: int, distribution: str = "rademacher"
) -> float:
    """E‖ĝ − g‖² of FG²U with b i.i.d. tangents, ĝ = (1/b) Σ_i v_i v_iᵀ g, for an exact directional derivative.

    Each term v vᵀ g has mean g and E‖v vᵀ g‖² = E[‖v‖² (vᵀg)²]: N‖g‖² for Rademacher (‖v‖² = N),
    (N + 2)‖g‖² for a standard Gaussian, N‖g‖² for the sphere of radius √N; subtracting ‖g‖² and
    dividing by b gives (N − 1)/b · ‖g‖², (N + 1)/b · ‖g‖² and (N − 1)/b · ‖g‖² respectively.
    """
    if meta_dim < 1 or num_directions < 1:
        raise ValueError(f"meta_dim and num_directions must be >= 1, got {meta_dim} and {num_directions}")
    extra = {"rademacher": -1, "gaussian": 1, "sphere": -1}
    if distribution not in extra:
        raise ValueError(f"unknown distribution {distribution!r}; choose one of {sorted(extra)}")
    return (meta_dim + extra[distribution]) / num_directions * float(grad_norm_sq)


def fg2u_expected_cosine(meta_dim: int, num_directions: int, distribution: str = "rademacher") -> float:
    """First-order approximation of E[cos(ĝ, g)] for FG²U: ‖g‖/√(‖g‖² + E‖ĝ − g‖²) = 1/√(1 + (N ∓ 1)/b).

    Exact in the limit of many repeats for the ratio of expectations, an approximation (accurate when
    N ≫ 1) for the expectation of the ratio. Independent of g.
    """
    return 1.0 / math.sqrt(1.0 + fg2u_expected_squared_error(1.0, meta_dim, num_directions, distribution))


def estimator_label(estimator: Any) -> str:
    """A readable label: the estimator's ``display_name`` (every fg2u estimator has one), else its class name."""
    value = getattr(estimator, "display_name", None)
    if callable(value):
        try:
            value = value()
        except TypeError:
            value = None
    return value if isinstance(value, str) and value else type(estimator).__name__


def named_estimators(estimators: Any) -> list[tuple[str, Any]]:
    """``[(label, estimator), …]`` from a mapping ``{label: est}``, a sequence or one estimator (labels unique)."""
    if isinstance(estimators, Mapping):
        items = list(estimators.items())
    elif callable(estimators):
        items = [(estimator_label(estimators), estimators)]
    else:
        items = [(estimator_label(e), e) for e in estimators]
    if not items:
        raise ValueError("estimators is empty: pass a dict {label: estimator} or a list of estimators")
    for label, est in items:
        if not callable(est):
            raise TypeError(f"estimator {label!r} is not callable; expected est(problem, phi, key) -> (grad, aux)")
    labels = [label for label, _ in items]
    if len(set(labels)) != len(labels):
        raise ValueError(f"estimator labels must be unique, got {labels}; pass a dict {{label: estimator}}")
    return items


def is_stateful(estimator: Any) -> bool:
    """Whether ``estimator`` carries state between meta steps (``stateful`` and ``init``/``estimate``)."""
    return bool(getattr(estimator, "stateful", False)) and hasattr(estimator, "init") and hasattr(estimator, "estimate")


def uses_key(estimator: Any) -> bool:
    """Whether an estimator is random (FG2U-like: has ``num_directions``); RGU, FGU, TRGU … are not."""
    return hasattr(estimator, "num_directions")


# ----------------------------------------------------------------------------------------------------------
# The gradient_quality protocol both backends share; each supplies a QualityKernel.


def problem_per_repeat(
    problem: Any, inputs: Sequence[Any] | None, num_repeats: int
) -> tuple[Callable[[Any], Any], list[Any], bool]:
    """``(make_problem, per_repeat_inputs, fixed)`` from ``gradient_quality``'s ``problem``, ``inputs`` and
    ``num_repeats``: a fixed problem repeats ``num_repeats`` times (inputs ``None``); a function
    ``inputs_r -> problem`` runs once per entry of ``inputs``."""
    if isinstance(problem, (UnrolledProblem, BlackBoxProblem)):
        if inputs is not None:
            raise ValueError("inputs is only used with a function problem; got a fixed problem and inputs")
        check_positive_int("num_repeats", num_repeats)
        return (lambda _: problem), [None] * num_repeats, True
    if callable(problem):
        if inputs is None:
            raise ValueError(
                "problem is a function inputs -> problem, so pass inputs=[inputs_0, …, inputs_{R-1}] "
                "(one input per repeat)"
            )
        per_repeat = list(inputs)
        if not per_repeat:
            raise ValueError("inputs is empty; pass one input per repeat")
        return problem, per_repeat, False
    raise TypeError(
        f"problem must be an fg2u.UnrolledProblem, a BlackBoxProblem or a function inputs -> problem, "
        f"got {type(problem).__name__}"
    )


@dataclasses.dataclass(frozen=True)
class Measurement:
    """What a backend measured over one estimator's repeats (see [`GradientQuality`][fg2u.quality.GradientQuality])."""

    memory_bytes: int | None
    memory_measure: str
    compile_seconds: float | None = None


class EstimatorRun(Protocol):
    """One estimator's repeats, prepared by [`QualityKernel.start`][fg2u.quality.QualityKernel.start] (compiled, warmed
    up, memory reset)."""

    def __call__(self, repeat: int, inputs: Any, state: Any) -> tuple[Any, Any]:
        """Estimate ``repeat`` (its key / seed and ``inputs``) from ``state``: ``(flat estimate, new state)``,
        finished (blocked) so that [`run_gradient_quality`][fg2u.quality.run_gradient_quality] can time it; ``state`` is
        None when stateless."""
        ...

    def finish(self) -> Measurement:
        """Called after the last repeat: the memory (and compile time) of this estimator."""
        ...


class QualityKernel(Protocol):
    """A backend's numeric part of ``gradient_quality``: the reference, each estimator's run, conversion."""

    def reference(self, repeat: int, inputs: Any) -> Any:
        """The flattened reference gradient of repeat ``repeat``."""
        ...

    def start(self, estimator: Any, state: Any) -> EstimatorRun:
        """Prepares the measured repeats of ``estimator`` (initial ``state``, None when stateless)."""
        ...

    def to_vector(self, flat: Any) -> np.ndarray:
        """A flattened backend array as a float64 NumPy vector (outside the timed region)."""
        ...


def run_gradient_quality(
    kernel: QualityKernel,
    phi: Any,
    estimators: Any,
    per_repeat: Sequence[Any],
    *,
    reference: Any,
    reference_name: str | None,
    fixed: bool,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
) -> list[GradientQuality]:
    """The loop of ``fg2u.jax.gradient_quality`` and ``fg2u.torch.gradient_quality``.

    ``per_repeat`` and ``fixed`` come from [`problem_per_repeat`][fg2u.quality.problem_per_repeat]; ``reference`` is the
    estimator behind ``kernel.reference`` (labelled ``reference_name``, by default its class name). References
    first: one per repeat, or one reused for all when the problem is ``fixed`` and the reference ignores its
    key (not [`uses_key`][fg2u.quality.uses_key]). Then for each estimator, in order: its initial state
    (``est.init(φ)`` when stateful, carried across repeats as across meta steps), ``kernel.start``, the R
    timed repeats (wall-clock seconds of each, conversion to NumPy excluded), ``run.finish()`` for its memory,
    and [`summarize`][fg2u.quality.summarize] against the references. ``progress`` shows a bar over (estimators + 1) × R
    steps (silent without tqdm).
    """
    items = named_estimators(estimators)
    bar = progress_bar(desc="gradient quality", total=(len(items) + 1) * len(per_repeat), enabled=progress)
    references: list[np.ndarray] = []
    for r, inp in enumerate(per_repeat):
        if fixed and not uses_key(reference) and references:
            references.append(references[0])
        else:
            references.append(kernel.to_vector(kernel.reference(r, inp)))
        bar.update(1)

    results = []
    for label, est in items:
        state = est.init(phi) if is_stateful(est) else None
        run = kernel.start(est, state)
        estimates, seconds = [], []
        for r, inp in enumerate(per_repeat):
            t0 = time.perf_counter()
            flat, state = run(r, inp, state)
            seconds.append(time.perf_counter() - t0)
            estimates.append(kernel.to_vector(flat))
            del flat
            bar.update(1)
        measured = run.finish()
        results.append(
            summarize(
                label,
                estimates,
                references,
                reference_name=reference_name or estimator_label(reference),
                memory_bytes=measured.memory_bytes,
                memory_measure=measured.memory_measure,
                seconds=seconds,
                compile_seconds=measured.compile_seconds,
                settings=dict((settings or {}).get(label, {})),
            )
        )
    bar.close()
    return results
