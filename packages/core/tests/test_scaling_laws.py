"""The fits and the time-to-quality model of ``packages/core/benchmarks/scaling_laws.py`` (numpy only).

Oracles: synthetic data from known laws (exact, and with log-normal noise of known σ), exact expectations over
every Rademacher sign vector of a small N, brute force over the number of devices, and a dynamic programme
for optimal checkpointing (independent of Griewank & Walther's closed form).
"""

from __future__ import annotations

import functools
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import scaling_laws as sl  # noqa: E402 (a benchmark helper module, not part of the installed package)


def test_power_law_recovers_exponents_exactly():
    T = np.array([10, 30, 100, 300, 1000, 10_000], float)
    P = np.array([1e3, 1e5, 1e4, 1e6, 1e3, 1e5])
    y = 3.5 * T**0.5 * P**1.0
    law = sl.fit_power_law({"T": T, "P": P}, y)
    assert law.exponents["T"] == pytest.approx(0.5, abs=1e-9)
    assert law.exponents["P"] == pytest.approx(1.0, abs=1e-9)
    assert law.coefficient == pytest.approx(3.5, rel=1e-9)
    assert law.rms_log_residual < 1e-9 and law.max_relative_residual < 1e-9
    assert law(T=4.0, P=2.0) == pytest.approx(3.5 * 2.0 * 2.0)


def test_power_law_with_noise_is_within_its_standard_error():
    # ln y = ln c + α ln T + ε, ε ~ N(0, σ²): the least-squares slope has standard deviation
    # σ / √Σ(ln T − mean)², so |α̂ − α| < 4 of those fails with probability ≈ 6e-5 (fixed seed anyway).
    rng = np.random.default_rng(0)
    T = np.logspace(1, 4, 40)
    sigma = 0.1
    y = 2.0 * T**1.0 * np.exp(sigma * rng.normal(size=T.size))
    law = sl.fit_power_law({"T": T}, y)
    sd = sigma / np.sqrt(np.sum((np.log(T) - np.log(T).mean()) ** 2))
    assert abs(law.exponents["T"] - 1.0) < 4 * sd
    assert law.exponent_stderr["T"] == pytest.approx(sd, rel=0.3)  # σ̂ from 38 residual dof: within 30 %
    assert law.rms_log_residual == pytest.approx(sigma, rel=0.3)


def test_power_law_errors():
    with pytest.raises(ValueError, match="one value only"):
        sl.fit_power_law({"T": [10, 10, 10], "P": [1, 2, 3]}, [1, 2, 3])
    with pytest.raises(ValueError, match="> 0"):
        sl.fit_power_law({"T": [1, 2, 3]}, [1, 0, 3])
    with pytest.raises(ValueError, match="has 2 values"):
        sl.fit_power_law({"T": [1, 2]}, [1, 2, 3])


@pytest.mark.parametrize("transform", ["linear", "sqrt", "log", "constant"])
def test_affine_law_identifies_its_transform(transform):
    T = np.array([10, 30, 100, 300, 1000, 3000, 10_000], float)
    y = 5.0 + (0.0 if transform == "constant" else 2.0) * sl.TRANSFORMS[transform](T)
    best = sl.best_affine(T, y)
    assert best.transform == transform
    assert best.max_relative_residual < 1e-9
    assert best.intercept == pytest.approx(5.0, rel=1e-9)
    if transform != "constant":
        assert best.slope == pytest.approx(2.0, rel=1e-9)
        # and the other structural laws do not fit these points
        others = [sl.fit_affine(T, y, t) for t in ("linear", "sqrt", "log") if t != transform]
        assert min(o.max_relative_residual for o in others) > 0.01


def _all_rademacher(n: int) -> np.ndarray:
    return np.array(list(itertools.product((-1.0, 1.0), repeat=n)))


@pytest.mark.parametrize("b", [1, 2])
def test_second_moment_identity_exactly(b):
    # exact expectation over all (2^N)^b draws: E ĝ = g and E‖ĝ‖² = ‖g‖²(1 + (N−1)/b)
    n = 4
    g = np.array([0.3, -1.2, 2.0, 0.7])
    signs = _all_rademacher(n)
    draws = np.array([sum((g @ v) * v for v in combo) / b for combo in itertools.product(signs, repeat=b)])
    assert np.allclose(draws.mean(axis=0), g)
    second = np.mean(np.sum(draws**2, axis=1))
    assert second == pytest.approx(g @ g * (1 + (n - 1) / b), rel=1e-12)
    # hence the cosine of the model and the descent ratio
    assert sl.cosine_of_directions(b, n) ** 2 == pytest.approx((g @ g) / second, rel=1e-12)
    assert sl.descent_ratio(b, n) == pytest.approx((g @ g) / second, rel=1e-12)


@pytest.mark.parametrize("n", [2, 10, 640, 10_000])
@pytest.mark.parametrize("c", [0.1, 0.5, 0.9, 0.99])
def test_directions_for_cosine_is_the_least_b(n, c):
    b = sl.directions_for_cosine(c, n)
    assert sl.cosine_of_directions(b, n) >= c - 1e-12
    if b > 1:
        assert sl.cosine_of_directions(b - 1, n) < c


def test_directions_for_cosine_errors():
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        sl.directions_for_cosine(1.0, 10)
    with pytest.raises(ValueError, match="meta_dim"):
        sl.directions_for_cosine(0.5, 0)


@pytest.mark.parametrize(
    ("n", "c", "t_dir", "t_exact", "overhead"),
    [(100, 0.5, 1.0, 4.5, 0.0), (1000, 0.9, 0.3, 1.0, 0.05), (10, 0.7, 2.0, 1.0, 0.0), (64, 0.5, 1.0, 1.0, 0.0)],
)
def test_crossover_devices_matches_brute_force(n, c, t_dir, t_exact, overhead):
    b = sl.directions_for_cosine(c, n)
    wins = [d for d in range(1, 2 * b + 2) if sl.fg2u_seconds(b, d, t_dir, overhead) < t_exact]
    expected = min(wins) if wins else None
    assert sl.crossover_devices(n, c, t_dir, t_exact, overhead) == expected


def test_descent_crossover_devices_matches_brute_force():
    n, t_exact = 500, 3.0

    def per_device(k: int) -> float:
        return 0.4 + 0.5 * k  # one chunk of k directions: a shared primal and k tangents

    def rate(d: int) -> float:
        return max(sl.descent_ratio(k * d, n) / per_device(k) for k in range(1, 65))

    expected = next(d for d in range(1, 10_000) if rate(d) > 1 / t_exact)
    assert sl.descent_crossover_devices(n, per_device, t_exact) == expected
    # a direction slower than the exact gradient never wins, whatever D
    assert sl.descent_crossover_devices(n, lambda k: 4.0 * k, t_exact, max_devices=10**6) is None


@functools.cache
def _optimal_forward_steps(length: int, snapshots: int) -> int:
    """Fewest forward steps to reverse ``length`` steps from a stored start state with ``snapshots`` checkpoints
    (the start's included): put the next checkpoint after m steps, reverse the right part with one checkpoint
    less, then the left part with all of them again; one checkpoint: recompute from the start every time."""
    if length == 1:
        return 0
    if snapshots == 1:
        return length * (length - 1) // 2
    return min(
        m + _optimal_forward_steps(length - m, snapshots - 1) + _optimal_forward_steps(m, snapshots)
        for m in range(1, length)
    )


@pytest.mark.parametrize("snapshots", [1, 2, 3, 5])
def test_revolve_forward_steps_is_optimal(snapshots):
    for length in range(1, 80):
        assert sl.revolve_forward_steps(length, snapshots) == _optimal_forward_steps(length, snapshots), length


def test_revolve_repetitions():
    assert sl.revolve_repetitions(10_000, 3) == 38  # C(41, 3) = 10,660 ≥ 10⁴ > C(40, 3) = 9,880
    assert sl.revolve_repetitions(1, 4) == 0
    assert math.comb(41, 3) >= 10_000 > math.comb(40, 3)
