"""fg2u.quality (backend-agnostic): the statistics against hand-computed values, and the FG²U variance
formula against its derivation checked by exhaustive enumeration of all Rademacher tangents."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import fg2u
from fg2u.quality import (
    GradientQuality,
    Measurement,
    cosine,
    fg2u_expected_cosine,
    fg2u_expected_squared_error,
    format_table,
    norm_ratio,
    problem_per_repeat,
    relative_error,
    run_gradient_quality,
    summarize,
    to_pandas,
)


def test_statistics_of_known_vectors() -> None:
    g = np.array([3.0, 4.0])  # ‖g‖ = 5
    assert cosine(g, g) == pytest.approx(1.0, abs=1e-15)
    assert cosine(-g, g) == pytest.approx(-1.0, abs=1e-15)
    assert cosine([4.0, -3.0], g) == pytest.approx(0.0, abs=1e-15)
    assert cosine([1.0, 0.0], g) == pytest.approx(0.6, abs=1e-15)
    assert relative_error(2 * g, g) == pytest.approx(1.0)
    assert relative_error([3.0, 0.0], g) == pytest.approx(0.8)
    assert norm_ratio(2 * g, g) == pytest.approx(2.0)
    assert cosine(np.zeros(2), g) == 0.0
    assert relative_error(np.zeros(2), np.zeros(2)) == 0.0 and math.isinf(relative_error(g, np.zeros(2)))
    assert norm_ratio(np.zeros(2), np.zeros(2)) == 1.0
    # shapes are flattened: a (2, 2) estimate against a (4,) reference
    assert cosine(np.eye(2), [1.0, 0.0, 0.0, 1.0]) == pytest.approx(1.0)


def test_bad_input_is_explained() -> None:
    with pytest.raises(ValueError, match="same"):
        cosine([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="empty"):
        cosine([], [])
    with pytest.raises(FloatingPointError, match="NaN"):
        relative_error([np.nan, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="at least once"):
        summarize("x", [], np.ones(3))
    with pytest.raises(ValueError, match="one reference per repeat"):
        summarize("x", [np.ones(3)] * 3, [np.ones(3)] * 2)
    with pytest.raises(ValueError, match="unknown distribution"):
        fg2u_expected_squared_error(1.0, 10, 2, "uniform")
    with pytest.raises(ValueError, match=">= 1"):
        fg2u_expected_squared_error(1.0, 10, 0)


def test_summarize_mean_std_and_record_metrics() -> None:
    g = np.array([1.0, 0.0])
    estimates = [np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([2.0, 0.0])]
    q = summarize(
        "est",
        estimates,
        g,
        memory_bytes=1024,
        memory_measure="m",
        seconds=[3.0, 1.0, 2.0],
        compile_seconds=0.5,
        settings={"b": 1},
    )
    assert isinstance(q, GradientQuality)
    assert q.cosines == (1.0, 0.0, 1.0)
    assert q.cosine_mean == pytest.approx(2 / 3) and q.cosine_std == pytest.approx(np.std([1, 0, 1], ddof=1))
    assert q.relative_errors == pytest.approx((0.0, math.sqrt(2), 1.0))
    assert q.norm_ratio_mean == pytest.approx(4 / 3)
    assert q.seconds_per_estimate == 2.0  # the median
    assert q.num_repeats == 3 and q.meta_dim == 2 and q.reference == "RGU"
    metrics = q.metrics()
    assert metrics["memory_bytes"] == 1024.0 and metrics["compile_seconds"] == 0.5
    assert all(isinstance(v, float) for v in metrics.values())
    single = summarize("one", [g], [g])
    assert single.cosine_std == 0.0 and "memory_bytes" not in single.metrics()
    table = format_table([q, single])
    assert "| est | 0.667 ± 0.577" in table and "1.00 KiB" not in table and "| one |" in table


def _exact_rademacher_error(g: np.ndarray, b: int) -> float:
    """E‖(1/b) Σ v_i v_iᵀ g − g‖² by enumerating every tuple of b Rademacher vectors (2^(N·b) terms)."""
    n = g.size
    vectors = [np.array(s, dtype=np.float64) for s in itertools.product((-1.0, 1.0), repeat=n)]
    total = 0.0
    for tup in itertools.product(vectors, repeat=b):
        est = sum(v * (v @ g) for v in tup) / b
        total += float(np.sum((est - g) ** 2))
    return total / len(vectors) ** b


@pytest.mark.parametrize("n,b", [(3, 1), (4, 1), (3, 2), (2, 3)])
def test_fg2u_rademacher_error_formula_matches_enumeration(n: int, b: int) -> None:
    g = np.random.default_rng(n * 10 + b).normal(size=n)
    exact = _exact_rademacher_error(g, b)
    assert fg2u_expected_squared_error(float(g @ g), n, b) == pytest.approx(exact, rel=1e-12)


def test_fg2u_gaussian_error_formula_by_monte_carlo() -> None:
    """Gaussian: E‖v vᵀg − g‖² = (N + 1)‖g‖². Monte Carlo with M samples: the per-sample value X has
    finite variance; the 6σ band of the sample mean (σ estimated from the same samples) holds the truth
    with probability ≈ 1 − 2e-9 by the CLT."""
    rng = np.random.default_rng(0)
    n, m = 5, 200_000
    g = rng.normal(size=n)
    v = rng.normal(size=(m, n))
    x = np.sum((v * (v @ g)[:, None] - g) ** 2, axis=1)
    expected = fg2u_expected_squared_error(float(g @ g), n, 1, "gaussian")
    assert abs(x.mean() - expected) < 6 * x.std(ddof=1) / math.sqrt(m)


def test_fg2u_expected_cosine_limits() -> None:
    assert fg2u_expected_cosine(1, 1) == 1.0  # N = 1: v vᵀ g = g exactly
    assert fg2u_expected_cosine(641, 8) == pytest.approx(1 / math.sqrt(81))
    assert fg2u_expected_cosine(10_000, 100) < fg2u_expected_cosine(10_000, 400)


def test_str_is_a_small_table_and_repr_leaves_out_the_repeats() -> None:
    g = np.array([1.0, 0.0])
    q = summarize("FG2U", [np.array([1.0, 0.0]), np.array([1.0, 1.0])], g, memory_bytes=3 * 2**20, memory_measure="m")
    # cosines 1 and 1/√2: mean 0.854, std (ddof = 1) |1 − 1/√2|/√2 = 0.207; relative errors 0 and 1.
    assert str(q).splitlines() == [
        "FG2U against RGU: 2 repeats, N = 2",
        "  cosine          0.854 ± 0.207",
        "  relative error  0.5 ± 0.71",
        "  norm ratio      1.21 ± 0.29",
        "  memory          3.00 MiB (m)",
        "  s / estimate    nan",
    ]
    one = summarize("RGU", [g], g, memory_bytes=4672, seconds=0.25, compile_seconds=1.5)
    assert str(one).splitlines()[0] == "RGU against RGU: 1 repeat, N = 2"
    assert str(one).splitlines()[-2:] == [
        "  memory          4.56 KiB (not measured)",  # 4672 / 1024 = 4.5625
        "  s / estimate    0.25 (compilation 1.5 s)",
    ]
    assert str(summarize("x", [g], g)).splitlines()[-2] == "  memory          —"
    assert "cosines=" not in repr(q) and "cosine_mean=" in repr(q)
    assert q.cosines == pytest.approx((1.0, 1 / math.sqrt(2)))  # still stored


def test_to_pandas_one_row_per_estimator() -> None:
    pd = pytest.importorskip("pandas")
    g = np.array([3.0, 4.0])
    a = summarize("a", [g], g, memory_bytes=2048, memory_measure="m", seconds=[0.5], compile_seconds=2.0)
    b = summarize("b", [np.array([4.0, -3.0])], g)
    frame = to_pandas([a, b])
    assert list(frame.index) == ["a", "b"] and frame.index.name == "estimator"
    assert frame.loc["a", "cosine_mean"] == pytest.approx(1.0) and frame.loc["b", "cosine_mean"] == pytest.approx(0.0)
    assert frame.loc["a", "memory_bytes"] == 2048.0 and pd.isna(frame.loc["b", "memory_bytes"])
    assert frame.loc["a", "compile_seconds"] == 2.0 and pd.isna(frame.loc["b", "compile_seconds"])
    assert to_pandas(a).shape == (1, frame.shape[1])


class _NumpyKernel:
    """A QualityKernel over NumPy: the 'gradient' of repeat r is g_r = (r + 1)·e_0 (exact), estimators add
    their own offsets; records every call so the protocol's order can be checked."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def reference(self, repeat, inputs):
        self.calls.append(("reference", repeat))
        return np.array([repeat + 1.0, 0.0])

    def start(self, estimator, state):
        self.calls.append(("start", estimator.name, state))
        kernel = self

        class Run:
            def __call__(self, repeat, inputs, state):
                kernel.calls.append(("estimate", estimator.name, repeat, state))
                new_state = None if state is None else state + 1
                return estimator.offset + np.array([repeat + 1.0, 0.0]), new_state

            def finish(self):
                kernel.calls.append(("finish", estimator.name))
                return Measurement(100, "fake bytes", 0.5)

        return Run()

    def to_vector(self, flat):
        return np.asarray(flat, dtype=np.float64)


class _Est:
    def __init__(self, name, offset, stateful=False, num_directions=None):
        self.name, self.offset, self.stateful = name, np.asarray(offset, dtype=np.float64), stateful
        if num_directions is not None:
            self.num_directions = num_directions

    def __call__(self, problem, phi, key):
        raise AssertionError("the kernel runs the estimator, not the loop")

    def display_name(self):  # the label gradient_quality gives an unnamed estimator
        return self.name

    def init(self, phi):
        return 10

    def estimate(self, problem, phi, key, state):
        raise AssertionError("the kernel runs the estimator, not the loop")


def test_run_gradient_quality_protocol_with_a_numpy_kernel() -> None:
    exact, tilted = _Est("exact", [0.0, 0.0]), _Est("tilted", [0.0, 1.0], stateful=True)
    kernel = _NumpyKernel()
    res = run_gradient_quality(
        kernel, None, [exact, tilted], [None] * 3, reference=_Est("ref", [0, 0]), reference_name=None, fixed=False
    )
    # not fixed: one reference per repeat; estimators in order, each started, run R times, finished
    assert kernel.calls[:3] == [("reference", 0), ("reference", 1), ("reference", 2)]
    assert kernel.calls[3:8] == [
        ("start", "exact", None),
        ("estimate", "exact", 0, None),
        ("estimate", "exact", 1, None),
        ("estimate", "exact", 2, None),
        ("finish", "exact"),
    ]
    # the stateful estimator starts from init(φ) = 10 and carries its state across repeats
    assert [c[3] for c in kernel.calls if c[:2] == ("estimate", "tilted")] == [10, 11, 12]
    assert [q.name for q in res] == ["exact", "tilted"] and res[0].reference == "ref"
    assert res[0].cosines == (1.0, 1.0, 1.0) and res[0].memory_bytes == 100 and res[0].compile_seconds == 0.5
    # tilted: ĝ_r = (r+1, 1) against g_r = (r+1, 0): cosine (r+1)/√((r+1)² + 1), relative error 1/(r+1)
    assert res[1].cosines == pytest.approx(tuple((r + 1) / math.sqrt((r + 1) ** 2 + 1) for r in range(3)))
    assert res[1].relative_errors == pytest.approx((1.0, 0.5, 1 / 3))
    assert all(s >= 0 for s in (res[0].seconds_per_estimate, res[1].seconds_per_estimate))


def test_run_gradient_quality_reuses_a_deterministic_reference_on_a_fixed_problem() -> None:
    for reference, calls in ((_Est("rgu", [0, 0]), 1), (_Est("fg2u", [0, 0], num_directions=4), 3)):
        kernel = _NumpyKernel()
        run_gradient_quality(
            kernel, None, {"e": _Est("e", [0, 0])}, [None] * 3, reference=reference, reference_name="R", fixed=True
        )
        assert sum(c[0] == "reference" for c in kernel.calls) == calls


def test_problem_per_repeat_arguments() -> None:
    problem = fg2u.UnrolledProblem(lambda p: p, lambda s, p, b: s, lambda s, p, b: s, num_steps=1)
    make, per_repeat, fixed = problem_per_repeat(problem, None, 4)
    assert make(None) is problem and per_repeat == [None] * 4 and fixed
    make, per_repeat, fixed = problem_per_repeat(lambda x: x, [1, 2], 7)
    assert make(5) == 5 and per_repeat == [1, 2] and not fixed
    with pytest.raises(ValueError, match="inputs"):
        problem_per_repeat(lambda x: x, None, 3)
    with pytest.raises(ValueError, match="empty"):
        problem_per_repeat(lambda x: x, [], 3)
    with pytest.raises(ValueError, match="only used with a function problem"):
        problem_per_repeat(problem, [1], 3)
    with pytest.raises(ValueError, match="num_repeats"):
        problem_per_repeat(problem, None, 0)
    with pytest.raises(TypeError, match="UnrolledProblem"):
        problem_per_repeat(42, None, 3)


def test_core_docstring_examples_run() -> None:
    """The runnable ``Examples:`` of the backend-free modules (quality.recommend, the spec grammar)."""
    import doctest

    import fg2u.experiment.spec
    import fg2u.quality

    for module in (fg2u.quality, fg2u.experiment.spec):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted >= 3 and result.failed == 0, module.__name__


def test_estimators_state_their_bias() -> None:
    import fg2u.jax as fj

    assert [e.bias for e in (fj.RGU(), fj.RGUCheckpointed(), fj.RGURecursive(), fj.FGU())] == ["exact"] * 4
    unbiased = (fj.FG2U(), fj.FG2U_ZO(), fj.Hybrid(), fj.RunningControlVariate(fj.FG2U()))
    assert [e.bias for e in unbiased] == ["unbiased"] * 4
    biased = (fj.TRGU(3), fj.HessianFree(), fj.Neumann(2), fj.Scaled(fj.RGU(), 2.0))
    assert [e.bias for e in biased] == ["biased"] * 4
    assert fj.Scaled(fj.FG2U(), 1.0).bias == "unbiased"
    assert fj.TwoPhase(fj.RGU(), fj.FG2U()).bias == "unbiased"
    assert fj.TwoPhase(fj.HessianFree(), fj.FG2U()).bias == "biased"


def test_recommend_ranks_by_progress_per_second_within_the_budgets() -> None:
    from fg2u.quality import recommend

    class Est:
        def __init__(self, bias: str) -> None:
            self.bias = bias

        def __call__(self, problem, phi, key):
            raise NotImplementedError

    def q(name: str, cos: float, memory: int | None, seconds: float) -> GradientQuality:
        return GradientQuality(name, "RGU", 3, 100, cos, 0.0, 0.0, 0.0, 1.0, 0.0, memory, "xla", seconds)

    estimators = {"RGU": Est("exact"), "RGUCheckpointed": Est("exact"), "FG2U": Est("unbiased"), "TRGU": Est("biased")}
    results = [q("RGU", 1.0, 1000, 0.10), q("RGUCheckpointed", 1.0, 200, 0.15), q("FG2U", 0.2, 50, 0.01)]
    results.append(q("TRGU", 0.5, 300, 0.05))
    # scores cos²/s: RGU 10, RGUCheckpointed 6.67, FG2U 0.04/0.01 = 4, TRGU 0.25/0.05 = 5
    unlimited = recommend(results, estimators)
    assert [c.name for c in unlimited.choices] == ["RGU", "RGUCheckpointed", "TRGU", "FG2U"]
    assert [c.score for c in unlimited.choices] == pytest.approx([10.0, 1 / 0.15, 5.0, 4.0])
    tight = recommend(results, estimators, memory_budget=250)
    assert tight.best is not None and tight.best.name == "RGUCheckpointed"
    assert [(c.name, c.fits) for c in tight.choices] == [
        ("RGUCheckpointed", True),
        ("FG2U", True),
        ("RGU", False),  # 1000 and 300 bytes: over 250
        ("TRGU", False),
    ]
    assert "over the budget" in tight.choices[-1].note
    assert "biased: averaging does not raise its cosine above ≈ 0.5" in str(unlimited)
    none = recommend(results, estimators, memory_budget=10)
    assert none.best is None and all(not c.fits for c in none.choices)
    with pytest.raises(ValueError, match="no estimator labelled"):
        recommend(results, {"RGU": Est("exact")})
    with pytest.raises(ValueError, match="memory_budget"):
        recommend(results, estimators, memory_budget=0)
