"""fg2u.experiment.loop: the meta loop every benchmark shares — logged losses, timings (first step apart,
evaluations left out), Diverged naming the step, early stops, evaluations at the requested steps — and the
anytime curve's steps.

Timing bounds come from ``time.sleep``, which sleeps at least the time asked; upper bounds leave at least
0.2 s for scheduling on a loaded machine, and each states the value it would have if the property failed."""

from __future__ import annotations

import math
import sys
import time

import pytest

from fg2u.experiment.loop import Diverged, LoopResult, curve_steps, progress, run_meta_loop


def counting(c, i):
    return c + 1, float(10 - i)


def test_losses_are_read_every_log_every_steps_and_at_the_last():
    result = run_meta_loop(counting, 0, 25, progress_bar=False, log_every=10)
    assert isinstance(result, LoopResult) and result.carry == 25
    assert result.losses == [(9, 1.0), (19, -9.0), (24, -14.0)]
    assert result.steps_run == result.num_steps == 25 and not result.stopped_early
    assert result.evaluations == []


def test_timings_separate_the_first_step_and_are_real():
    """Step 0 sleeps 0.3 s (a compilation), steps 1..4 sleep 0.01 s: first_step_s >= 0.3, step_s is the mean of
    the others (>= 0.01; it would be >= (0.3 + 4 * 0.01) / 4 = 0.085 if step 0 were counted in it)."""

    def step(c, i):
        time.sleep(0.3 if i == 0 else 0.01)
        return c, 0.0

    result = run_meta_loop(step, 0, 5, progress_bar=False)
    assert result.first_step_s >= 0.3
    assert 0.01 <= result.step_s < 0.085
    assert result.seconds >= 0.3 + 4 * 0.01
    assert result.seconds == pytest.approx(result.first_step_s + 4 * result.step_s)


def test_block_runs_after_the_first_and_last_steps_and_before_each_evaluation():
    blocked = []
    run_meta_loop(
        counting,
        0,
        6,
        progress_bar=False,
        block=lambda c: blocked.append(c),
        evaluate=float,
        evaluate_at=(3,),
    )
    assert blocked == [1, 3, 6]  # first step, before the evaluation at 3, last step


def test_evaluations_happen_at_the_requested_steps_and_their_time_is_left_out():
    """Steps sleep 0.01 s, each evaluation 0.2 s, at steps 0, 2 and 4 of 4. Without the exclusion ``seconds``
    would be >= 4 * 0.01 + 3 * 0.2 = 0.64 and the evaluation at step 4 would see >= 0.44 s."""

    def step(c, i):
        time.sleep(0.01)
        return c + 1, 1.0

    def evaluate(c):
        time.sleep(0.2)
        return 10.0 * c

    result = run_meta_loop(step, 0, 4, progress_bar=False, log_every=3, evaluate=evaluate, evaluate_at=(0, 2, 4))
    assert [(k, v) for k, _, v in result.evaluations] == [(0, 0.0), (2, 20.0), (4, 40.0)]
    seconds = [s for _, s, _ in result.evaluations]
    assert seconds[0] < 0.2  # before any step: nothing but set-up
    assert 0.02 <= seconds[1] and 0.04 <= seconds[2] < 0.44
    assert seconds == sorted(seconds)
    assert 0.04 <= result.seconds < 0.6
    assert seconds[2] <= result.seconds


def test_steps_beyond_the_loop_are_never_evaluated():
    result = run_meta_loop(counting, 0, 3, progress_bar=False, evaluate=float, evaluate_at=(1, 3, 7))
    assert [k for k, _, _ in result.evaluations] == [1, 3]
    untouched = run_meta_loop(counting, 0, 3, progress_bar=False, evaluate_at=(1, 3))  # no evaluate: no points
    assert untouched.evaluations == []


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_loss_raises_diverged_naming_the_step(bad):
    def step(c, i):
        return c, bad if i >= 7 else 1.0  # a NaN that stays, as in a diverged run

    with pytest.raises(Diverged, match=rf"the outer loss became {bad} at meta step 7; lower the meta") as info:
        run_meta_loop(step, 0, 20, progress_bar=False, log_every=1, desc="FG2U seed 0")
    assert info.value.step == 7 and isinstance(info.value, FloatingPointError)
    assert str(info.value).startswith("FG2U seed 0: ")
    # read every 5 steps: found at the first read after it (step 9), before the loop runs on
    with pytest.raises(Diverged) as info:
        run_meta_loop(step, 0, 20, progress_bar=False, log_every=5)
    assert info.value.step == 9


def test_stop_when_ends_the_loop_logs_and_evaluates_the_last_step():
    seen = []
    shown = []
    result = run_meta_loop(
        lambda c, i: (c + 1, float(100 - c)),
        0,
        50,
        progress_bar=False,
        log_every=10,
        stop_when=lambda i, c: seen.append((i, c)) or c >= 13,  # called after every step with (i, carry)
        postfix=lambda c: shown.append(c) or {"carry": c},
        evaluate=float,
        evaluate_at=(0, 10, 50),
    )
    assert seen == [(i, i + 1) for i in range(13)]
    assert result.carry == 13 and result.steps_run == 13 and result.num_steps == 50 and result.stopped_early
    assert result.losses == [(9, 91.0), (12, 88.0)]  # the step that stopped the loop is logged
    assert shown == [10, 13]  # the postfix is computed at logged steps only
    assert [(k, v) for k, _, v in result.evaluations] == [(0, 0.0), (10, 10.0), (13, 13.0)]  # and evaluated


def test_bad_arguments():
    with pytest.raises(ValueError, match="log_every must be >= 1, got 0"):
        run_meta_loop(counting, 0, 3, log_every=0)
    with pytest.raises(ValueError, match="num_steps must be >= 1, got 0"):
        run_meta_loop(counting, 0, 0)


@pytest.mark.parametrize(
    "num_steps, points, steps",
    [
        (10, 6, (0, 2, 4, 6, 8, 10)),
        (100, 7, (0, 17, 33, 50, 67, 83, 100)),
        (6, 7, (0, 1, 2, 3, 4, 5, 6)),
        (3, 7, (0, 1, 2, 3)),  # fewer steps than points: every step once
        (1, 2, (0, 1)),
    ],
)
def test_curve_steps(num_steps, points, steps):
    assert curve_steps(num_steps, points) == steps


def test_curve_steps_needs_two_points():
    with pytest.raises(ValueError, match="needs >= 2 points, got 1"):
        curve_steps(10, 1)


def test_progress_bar_on_stderr_or_silent(capsys, monkeypatch):
    assert list(progress(range(3), enabled=False)) == [0, 1, 2]
    silent = progress(total=2, enabled=False)
    assert list(silent) == [0, 1]
    silent.set_postfix(a=1), silent.update(), silent.close()  # the bar's interface, doing nothing
    pytest.importorskip("tqdm")
    bar = progress(range(2), desc="meta steps", leave=True)
    assert list(bar) == [0, 1]
    bar.close()
    out = capsys.readouterr()
    assert "meta steps" in out.err and out.out == ""
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # the `progress` extra not installed: silent, no error
    assert list(progress(range(2), desc="x")) == [0, 1]
    assert capsys.readouterr().err == ""
