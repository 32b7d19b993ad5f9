"""Benchmarks as plugins: the declaration (fg2u.benchmarks), discovery through entry points, the installed
benchmarks' declarations and published numbers, and that the core names no benchmark."""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import pytest

import fg2u.benchmarks as fb
from fg2u.benchmarks import Benchmark, Metric, Reference, discover, estimator_token

SRC = Path(fb.__file__).resolve().parent


def _bench(**changes):
    fields = dict(
        name="toy",
        smoke_command=("{python}", "-m", "toy", "--seeds", "{seeds}", "--out", "{out}"),
        metrics=(Metric("acc", "higher", "%"),),
        columns=("dataset",),
    )
    fields.update(changes)
    return Benchmark(**fields)


def test_declaration_fills_placeholders_and_validates():
    bench = _bench()
    argv = bench.command(python="/py", out="/tmp/o/toy", repo_root="/repo", seeds=(0, 1, 2))
    assert argv == ["/py", "-m", "toy", "--seeds", "0", "1", "2", "--out", "/tmp/o/toy"]
    assert bench.title == "toy" and bench.tables == ("task", "config") and bench.metric("acc").label == "acc"
    assert _bench(smoke_command=None).command(python="p", out="o", repo_root="r") is None
    assert _bench(smoke_requires=("{repo_root}/nope.py",)).missing_requirements(repo_root="/repo") == ["/repo/nope.py"]
    with pytest.raises(ValueError, match="direction must be 'higher' or 'lower'"):
        Metric("acc", "up")
    with pytest.raises(ValueError, match="unit must be one of"):
        Metric("acc", "higher", "percent")
    with pytest.raises(TypeError, match=r"not one string .* write \('dataset',\)"):
        _bench(columns="dataset")
    with pytest.raises(ValueError, match="names metric 'f1', which is not one of its metrics"):
        _bench(references=(Reference("f1", "X", 1.0, "%", {}, "paper"),))
    with pytest.raises(ValueError, match="unknown placeholder 'outdir'"):
        _bench(smoke_command=("{outdir}",)).command(python="p", out="o", repo_root="r")
    with pytest.raises(ValueError, match="smoke_command is empty"):
        _bench(smoke_command=())


def test_metric_bounds_default_by_unit_and_are_validated():
    """The plausible range a record's value must lie in (the leaderboard rejects others at load, issue 24)."""
    assert Metric("acc", "higher", "%").bounds == (0.0, 100.0)
    assert Metric("mem", "lower", "bytes").bounds == Metric("t", "lower", "s").bounds == (0.0, math.inf)
    assert Metric("err", "lower", "fraction").bounds == (-math.inf, math.inf)  # relative errors may exceed 1
    assert Metric("err", "lower", "fraction", bounds=(0.0, 10.0)).bounds == (0.0, 10.0)
    with pytest.raises(ValueError, match=r"bounds must be \(low, high\) with low < high, got \(1.0, 1.0\)"):
        Metric("acc", "higher", "%", bounds=(1.0, 1.0))
    with pytest.raises(ValueError, match="kind must be one of"):
        Metric("acc", "higher", "%", kind="noisy")


def test_reference_text_converts_percent_and_fraction_and_matches_estimator_spellings():
    ref = Reference("acc", "FG2U-ZO", 82.44, "%", {"ipc": 1}, "paper")
    assert ref.text("%") == "82.44" and ref.text("fraction") == "0.8244" and ref.text(None) == "82.44 %"
    rng = Reference("acc", "X", 1.0, "%", {}, "fig", approximate=True, high=3.0, decimals=0)
    assert rng.text("%") == "≈1–3" and rng.text("fraction") == "≈0.01–0.03" and rng.text("") == "≈1–3 %"
    assert ref.matches_estimator("FG²U-ZO") and ref.matches_estimator("fg2u_zo") and not ref.matches_estimator("FG2U")
    assert estimator_token("FG²U_ZO (central)") == "fg2uzocentral"


class _FakeEntryPoint:
    def __init__(self, name, value, loaded):
        self.name, self.value, self._loaded = name, value, loaded

    def load(self):
        if isinstance(self._loaded, Exception):
            raise self._loaded
        return self._loaded


def test_discover_orders_by_declared_order_and_reports_broken_plugins(monkeypatch):
    late, early = _bench(name="late", order=50), _bench(name="early", order=5)
    points = [
        _FakeEntryPoint("late", "pkg.late:B", late),
        _FakeEntryPoint("early", "pkg.early:make", lambda: early),  # a factory is called
        _FakeEntryPoint("broken", "pkg.broken:B", ImportError("No module named 'pkg.broken'")),
        _FakeEntryPoint("wrong", "pkg.wrong:B", {"name": "wrong"}),
        _FakeEntryPoint("again", "pkg.again:B", _bench(name="late")),
    ]
    monkeypatch.setattr(fb, "_entry_points", lambda group: points)
    found, issues = discover(with_issues=True)
    assert [b.name for b in found] == ["early", "late"]
    text = "\n".join(map(str, issues))
    assert "broken = pkg.broken:B: cannot be loaded (ImportError" in text and "pip install -e" in text
    assert "is a dict, not fg2u.benchmarks.Benchmark" in text and "declares the name 'late' a second time" in text


def test_installed_plugins_are_discovered_through_entry_points():
    found, issues = discover(with_issues=True)
    assert not issues, issues
    names = [b.name for b in found]
    assert "core" in names  # the core's own memory benchmark registers from the core's pyproject
    core = next(b for b in found if b.name == "core")
    assert core.smoke_requires and "bench_core.py" in core.smoke_requires[0]
    for name in ("vision", "pde", "lm"):  # this monorepo's benchmarks register when installed next to the core
        if importlib.util.find_spec(f"fg2u_bench_{name}") is not None:
            bench = next(b for b in found if b.name == name)
            assert bench.smoke_command[1:3] == ("-m", f"fg2u_bench_{name}") and "{seeds}" in bench.smoke_command


def _installed(name):
    found = {b.name: b for b in discover()}
    if name not in found:
        pytest.skip(f"benchmark {name!r} is not installed (pip install -e packages/bench-{name})")
    return found[name]


def test_published_numbers_live_in_the_benchmark_plugins():
    vision = _installed("vision")
    table = {(r.where["dataset"], r.where["ipc"], r.estimator): r.value for r in vision.references}
    assert len(table) == 45  # 3 data sets x 3 IPC x (TRGU, HessianFree, Neumann, FG2U, RGU): the paper's Table 1
    assert table[("mnist", 1, "FG2U")] == 82.44 and table[("mnist", 1, "RGU")] == 92.32
    assert table[("mnist", 1, "TRGU")] == 73.76 and table[("cifar10", 1, "HessianFree")] == 19.72
    assert table[("cifar10", 50, "RGU")] == 56.37 and table[("cifar100", 10, "FG2U")] == 23.38
    lm = _installed("lm")
    f1 = {(r.where["model_size"], r.estimator): r.value for r in lm.references}
    assert f1[("gpt2-xl", "FG2U")] == 14.42 and f1[("distilgpt2", "RGU (CaMeLS impl.)")] == 5.53
    pde = _installed("pde")
    paper = [r for r in pde.references if r.where.get("setting") == "paper"]
    raissi = [r for r in pde.references if r.where.get("setting") == "raissi"]
    assert {r.where["task"] for r in paper} == {"burgers", "allen_cahn", "kdv"}
    # the paper's noise-free FG²U-ZO errors in % (issue 12), only beside noise-free runs
    assert {r.where["task"]: r.value for r in paper} == {"burgers": 0.97, "allen_cahn": 2.34, "kdv": 0.72}
    assert all(r.where["noise_level"] == 0.0 and not r.approximate for r in paper)
    assert all(r.matches_estimator("FG2U_ZO") for r in paper)
    # Raissi et al.'s PINN (the anchors' own setting): Burgers λ1/λ2 clean and 1 % noise, KdV λ2
    values = {(r.where["task"], r.metric, r.where["noise_level"]): r.value for r in raissi}
    assert values[("burgers", "lambda1_relative_error", 0.01)] == 0.04
    assert values[("burgers", "lambda2_relative_error", 0.01)] == 0.84
    assert len(paper) + len(raissi) == len(pde.references)
    assert all(r.source for b in (vision, lm, pde) for r in b.references)


def test_core_source_names_no_benchmark():
    pattern = re.compile(r"vision|pde|\blm\b|camels|condensation", re.I)
    hits = []
    for path in sorted(SRC.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not hits, "benchmark knowledge in the core:\n" + "\n".join(hits)
