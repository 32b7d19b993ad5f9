"""Leaderboards and CI regression tracking built on :mod:`fg2u.records` result records.

* :mod:`fg2u.leaderboard.aggregate` — load ``results/**/*.jsonl`` (malformed lines reported by file and
  line, skipped), group runs, mean ± std over seeds, direction of "best" per metric.
* :mod:`fg2u.leaderboard.references` — the (FG)²U paper's published numbers (reference rows).
* :mod:`fg2u.leaderboard.render` — ``LEADERBOARD.md``, self-contained ``leaderboard.html``, PNG plots.
* :mod:`fg2u.leaderboard.regression` — fresh smoke records against ``results/baselines/``.

Command line::

    python -m fg2u.leaderboard render --results results
    python -m fg2u.leaderboard regression --results results [--update-baselines]

(The submodule :mod:`fg2u.leaderboard.aggregate` holds :func:`~fg2u.leaderboard.aggregate.aggregate`,
which reads a results folder and summarises it in one call.) Aggregation and the regression check need only the standard library; :func:`to_dataframe` needs pandas
and the plots need matplotlib (``pip install "fg2u[leaderboard]"``), imported only when used.
"""

from fg2u.leaderboard.aggregate import (
    GroupKey,
    GroupSummary,
    LoadIssue,
    MetricStats,
    best_entries,
    load_results,
    metric_direction,
    summarize,
    to_dataframe,
)
from fg2u.leaderboard.references import REFERENCES, Reference
from fg2u.leaderboard.render import render_all

__all__ = [
    "GroupKey",
    "GroupSummary",
    "LoadIssue",
    "MetricStats",
    "REFERENCES",
    "Reference",
    "best_entries",
    "load_results",
    "metric_direction",
    "render_all",
    "summarize",
    "to_dataframe",
]
