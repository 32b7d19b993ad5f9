"""Leaderboards and CI regression tracking built on [`fg2u.experiment.records`][fg2u.experiment.records] result records.

* `fg2u.leaderboard.aggregate` — load ``results/**/*.jsonl`` (malformed lines reported by file and
  line, skipped), group runs, mean ± std over seeds, direction of "best" per metric.
* `fg2u.leaderboard.render` — ``LEADERBOARD.md``, self-contained ``leaderboard.html``, PNG plots:
  headline tables first, full tables in an appendix.
* `fg2u.leaderboard.browser` — the page in headless Chromium: screenshot and the text visible on
  the first screen.

What a benchmark is — its name, smoke command, headline metrics, table columns and published reference
numbers — comes from its declaration ([`fg2u.benchmarks.Benchmark`][fg2u.benchmarks.Benchmark], registered under the
``fg2u.benchmarks`` entry points); this package holds no benchmark names.
* `fg2u.leaderboard.regression` — fresh smoke records against ``results/baselines/``.

Command line::

    python -m fg2u.leaderboard render --results results
    python -m fg2u.leaderboard regression --results results [--update-baselines]
    python -m fg2u.leaderboard screenshot --results results   # needs chromium

(The submodule `fg2u.leaderboard.aggregate` holds `aggregate`,
which reads a results folder and summarises it in one call.) Aggregation and the regression check need only the standard
library; `to_dataframe` needs pandas and the plots need matplotlib (``pip install "fg2u[leaderboard]"``), imported only
when used.
"""

from fg2u.benchmarks import Benchmark, Metric, Reference, discover
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
from fg2u.leaderboard.render import render_all

__all__ = [
    "Benchmark",
    "Metric",
    "discover",
    "GroupKey",
    "GroupSummary",
    "LoadIssue",
    "MetricStats",
    "Reference",
    "best_entries",
    "load_results",
    "metric_direction",
    "render_all",
    "summarize",
    "to_dataframe",
]
