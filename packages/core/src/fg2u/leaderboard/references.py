"""The (FG)²U paper's published numbers, shown as reference rows in the leaderboard.

"Memory-Efficient Gradient Unrolling for Large-Scale Bi-level Optimization" (Shen et al., NeurIPS 2024),
the paper that introduces (FG)²U. The numbers were produced by the
authors with their own code, data and budgets (10,000 meta steps, full data sets, GPUs); they are a yard
stick, not something our smoke or CPU configurations are expected to reach, and they never take part in
"best" marking or regression checks.

Each :class:`Reference` names the metric it reports and the record metric names it is shown under
(``columns``); values are in ``unit`` (``"%"``). :func:`reference_in_column_unit` converts a value to the
scale of a leaderboard column (percent or fraction, from the column name, a ``*_unit`` setting of the
runs, or the range of the values); when the unit cannot be told the value keeps its ``%`` sign.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["Reference", "REFERENCES", "references_for", "reference_in_column_unit"]

_ACCURACY_COLUMNS = (
    "test_accuracy",
    "test_accuracy_mean",
    "accuracy",
    "test_acc",
    "eval_accuracy",
    "mean_test_accuracy",
    "test_accuracy_pct",
    "accuracy_pct",
)
_F1_COLUMNS = ("f1", "test_f1", "f1_pct", "token_f1", "squad_f1")
_COEF_ERROR_COLUMNS = (
    "coef_rel_error",
    "coefficient_relative_error",
    "relative_coefficient_error",
    "coef_relative_error",
    "rel_coef_error",
    "coef_error",
    "coef_rel_error_pct",
)


@dataclasses.dataclass(frozen=True)
class Reference:
    """One published number.

    Attributes:
      benchmark: leaderboard table it belongs to (``"vision"``, ``"pde"``, ``"lm"``).
      task: what was solved (``"condensation"``, ``"burgers"``, ``"streamingqa"`` …).
      dataset: the paper's data set name.
      estimator: method as named in the paper.
      metric: canonical metric name (shown when no column matches).
      value: the published value (``low`` and ``high`` for a range read off a figure).
      unit: unit of ``value``, ``"%"``.
      columns: record metric names this reference is displayed under.
      settings: problem settings (e.g. ``{"ipc": 1}``) shown in the row.
      source: where in the paper.
      approximate: True when read off a plot rather than a table.
      high: upper end of a range (``value`` is then the lower end).
      decimals: decimals as published (kept when the value is converted to a fraction).
    """

    benchmark: str
    task: str
    dataset: str
    estimator: str
    metric: str
    value: float
    unit: str
    columns: tuple[str, ...]
    settings: dict[str, Any]
    source: str
    approximate: bool = False
    high: float | None = None
    decimals: int = 2

    def text(self, scale: float | None = None) -> str:
        """The value (or range): times ``scale`` in a column's unit, or with its own unit when None."""
        factor = 1.0 if scale is None else scale
        decimals = self.decimals + max(0, round(-math.log10(factor)))
        low = f"{self.value * factor:.{decimals}f}"
        body = low if self.high is None else f"{low}–{self.high * factor:.{decimals}f}"
        unit = f" {self.unit}" if scale is None and self.unit else ""
        return ("≈" if self.approximate else "") + body + unit


_TABLE1 = "paper Table 1 (test accuracy of a ConvNet-3 trained on the condensed set)"
_VISION = {
    # dataset: {ipc: (FG2U, RGU)}
    "mnist": {1: (82.44, 92.32), 10: (96.12, 96.79), 50: (97.01, 97.72)},
    "cifar10": {1: (29.37, 34.08), 10: (50.10, 53.15), 50: (51.98, 56.37)},
    "cifar100": {1: (8.22, 15.61), 10: (23.38, 25.42), 50: (25.84, 28.52)},
}

_LM = {
    # base model: (RGU as implemented in CaMeLS, FG2U)
    "distilgpt2": (5.53, 6.37),
    "gpt2-large": (12.19, 12.50),
    "gpt2-xl": (12.94, 14.42),
}

_PDE_SOURCE = (
    "paper Fig. 2 / Table F.3 (read off the figure: FG2U-ZO with the numerical solver recovers the "
    "coefficient to roughly 1–3 % relative error; per-equation values are not tabulated)"
)


def _build() -> tuple[Reference, ...]:
    refs: list[Reference] = []
    for dataset, by_ipc in _VISION.items():
        for ipc, (fg2u, rgu) in by_ipc.items():
            for estimator, value in (("FG2U", fg2u), ("RGU", rgu)):
                refs.append(
                    Reference(
                        "vision", "condensation", dataset, estimator, "test_accuracy", value, "%",
                        _ACCURACY_COLUMNS, {"ipc": ipc}, _TABLE1,
                    )
                )
    for equation in ("burgers", "allen_cahn", "kdv"):
        refs.append(
            Reference(
                "pde", equation, "paper-reference-solution", "FG2U-ZO", "coef_rel_error", 1.0, "%",
                _COEF_ERROR_COLUMNS, {}, _PDE_SOURCE, approximate=True, high=3.0, decimals=0,
            )
        )
    for model, (rgu, fg2u) in _LM.items():
        for estimator, value in (("RGU (CaMeLS impl.)", rgu), ("FG2U", fg2u)):
            refs.append(
                Reference(
                    "lm", "streamingqa", "streamingqa", estimator, "f1", value, "%", _F1_COLUMNS,
                    {"model_size": model},
                    "paper Table 2 (StreamingQA F1 of the adapted base model, CaMeLS weighting)",
                )
            )
    return tuple(refs)


#: Every published number we show.
REFERENCES: tuple[Reference, ...] = _build()


def references_for(benchmark: str, references: Iterable[Reference] = REFERENCES) -> list[Reference]:
    """The references of one benchmark table."""
    return [r for r in references if r.benchmark == benchmark]


def reference_in_column_unit(
    column: str, column_values: Sequence[float], unit_hints: Mapping[str, Any] | None = None
) -> float | None:
    """Factor that converts a percent value to the unit of ``column``: 1 (percent), 0.01 (fraction), or
    None when the unit cannot be told (the value is then shown with its ``%`` sign).

    In order: a name ending in ``_pct``/``_percent`` is percent; a settings hint ``<word>_unit`` (e.g.
    ``accuracy_unit="percent"``) whose ``<word>`` is a word of the column name decides; a relative error
    (``relative``/``rel`` and ``error``/``err`` in the name) is a fraction; an accuracy-like column whose
    values all lie in [0, 1] (not all exactly 0 or 1) is a fraction, and one with a value above 1 percent.
    """
    lowered = column.lower()
    if lowered.endswith("_pct") or lowered.endswith("_percent"):
        return 1.0
    words = set(re.split(r"[^a-z0-9]+", lowered))
    for key, value in (unit_hints or {}).items():
        stem = key.rsplit(".", 1)[-1]
        if stem.endswith("_unit") and stem[: -len("_unit")] in words:
            unit = str(value).lower()
            if unit in ("percent", "%", "pct"):
                return 1.0
            if unit in ("fraction", "ratio", "1"):
                return 0.01
    if words & {"relative", "rel"} and words & {"error", "err"}:
        return 0.01
    if words & {"error", "err", "loss"}:
        return None
    finite = [v for v in column_values if v == v and abs(v) != float("inf")]
    if finite and all(0.0 <= v <= 1.0 for v in finite) and any(0.0 < v < 1.0 for v in finite):
        return 0.01
    if finite and max(abs(v) for v in finite) > 1.0:
        return 1.0
    return None
