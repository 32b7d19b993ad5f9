"""fg2u.quality (backend-agnostic): the statistics against hand-computed values, and the FG²U variance
formula against its derivation checked by exhaustive enumeration of all Rademacher tangents."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from fg2u.quality import (
    GradientQuality,
    cosine,
    fg2u_expected_cosine,
    fg2u_expected_squared_error,
    format_table,
    norm_ratio,
    relative_error,
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
