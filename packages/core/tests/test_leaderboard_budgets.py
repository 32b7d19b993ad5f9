"""Equal-time and memory-budget views (fg2u.leaderboard.budgets) against hand-computed values."""

from __future__ import annotations

import datetime as dt

import pytest

from fg2u.benchmarks import Benchmark, Metric
from fg2u.experiment.records import Curve, Memory
from fg2u.leaderboard import budgets

BENCH = Benchmark(
    name="vision",
    smoke_command=None,
    metrics=(Metric("test_accuracy", "higher", "%", "test accuracy"),),
    columns=("dataset",),
    yardsticks=("RandomReal",),
)


def _curve(seconds, values):
    return Curve("acc", tuple(range(len(seconds))), tuple(seconds), tuple(values))


@pytest.fixture
def runs(make_test_record):
    def make(estimator, seed, final, seconds=None, values=None, memory=None, **fields):
        return make_test_record(
            estimator=estimator,
            seed=seed,
            metrics={"test_accuracy": final},
            problem_settings={"ipc": 1},
            curve=None if seconds is None else _curve(seconds, values),
            memory=None if memory is None else Memory("xla_temp_bytes", memory),
            **fields,
        )

    return make


def test_value_at_is_the_last_point_reached(runs):
    record = runs("FG2U", 0, 50.0, seconds=[1.0, 2.0, 4.0], values=[10.0, 20.0, 40.0])
    assert budgets.value_at(record, 0.5) is None  # not started (its first point is after compilation)
    assert budgets.value_at(record, 1.0) == 10.0 and budgets.value_at(record, 3.9) == 20.0
    assert budgets.value_at(record, 100.0) == 40.0  # finished: its last value
    assert budgets.value_at(runs("RGU", 0, 1.0), 5.0) is None  # no curve


def test_equal_time_and_memory_budget_tables(runs):
    records = [
        # RGU: fast, exact, memory 100; FG2U: slow, memory 10; a second FG2U seed
        runs("RGU", 0, 90.0, seconds=[1.0, 2.0], values=[10.0, 80.0], memory=100),
        runs("RGU", 1, 92.0, seconds=[1.0, 2.0], values=[10.0, 84.0], memory=100),
        runs("FG2U", 0, 60.0, seconds=[1.0, 5.0, 9.0], values=[10.0, 30.0, 50.0], memory=10),
        runs("FG2U", 1, 62.0, seconds=[1.0, 5.0, 9.0], values=[10.0, 40.0, 60.0], memory=10),
        runs("RGUCheckpointed", 0, 88.0, seconds=[1.0, 3.0], values=[10.0, 70.0], memory=20),
        runs("RandomReal", 0, 61.0),  # a yard stick: never chosen
    ]
    (pool,) = budgets.pools(records, [BENCH])
    lines = "\n".join(budgets.equal_time_table(pool))
    # budgets: finishing times 2 s (RGU), 3 s (median), 9 s (FG2U)
    assert "| ≤ 2 s | ≤ 3 s | ≤ 9 s |" in lines
    assert "| FG2U | 2 | 10 | 10 | 55 | 9 s |" in lines  # (10+10)/2, then (50+60)/2 at 9 s
    assert "| RGU | 2 | **82** | **82** | **82** | 2 s |" in lines
    assert "| RGUCheckpointed | 1 | 10 | 70 | 70 | 3 s |" in lines
    table = "\n".join(budgets.memory_budget_table(pool))
    assert "| ≤ 25 % of RGU (2.38e-05 MiB) | RGUCheckpointed | 88 |" in table  # 20 ≤ 25 bytes, best accuracy
    assert "| ≤ 50 % of RGU (4.77e-05 MiB) | RGUCheckpointed | 88 |" in table
    assert "| unlimited | RGU | 91 |" in table
    assert "RandomReal" not in table


def test_a_seed_run_again_counts_once(runs):
    old = runs("RGU", 0, 10.0, seconds=[1.0], values=[5.0], timestamp="2026-01-01T00:00:00+00:00")
    new = runs("RGU", 0, 90.0, seconds=[1.0], values=[80.0], timestamp="2026-02-01T00:00:00+00:00")
    (pool,) = budgets.pools([new, old], [BENCH])
    assert [r.metrics["test_accuracy"] for r in pool.runs["RGU"]] == [90.0]
    assert dt.datetime.fromisoformat(pool.runs["RGU"][0].timestamp).month == 2


def test_no_view_without_two_curves_or_rgu_memory(runs):
    (pool,) = budgets.pools([runs("FG2U", 0, 60.0, seconds=[1.0], values=[1.0], memory=5)], [BENCH])
    assert budgets.equal_time_table(pool) is None and budgets.memory_budget_table(pool) is None
