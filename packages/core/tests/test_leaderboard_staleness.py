"""fg2u.leaderboard.staleness against a git repository built here, commit by commit, with a known history:

    C1  core and bench-vision created
    C2  bench-vision changed          ── branch "side": B1 (docs only), from C2
    C3  core changed
    C4  docs changed only (no measured path)

so a core record is current from C3 on, a vision record from C3 on (its sources include the core), and a record
of B1 is stale (C3 is not in its history). The expected verdicts follow from that history alone.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fg2u.benchmarks import Benchmark, Metric
from fg2u.experiment.records import append_records
from fg2u.leaderboard import staleness as staleness_module
from fg2u.leaderboard.aggregate import summarize
from fg2u.leaderboard.render import render_all
from fg2u.leaderboard.staleness import declared_sources, stale_groups, staleness

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

ROOT = Path(__file__).resolve().parents[3]
CORE = "packages/core/src/fg2u"
# what the declarations give in this monorepo (checked against declared_sources below), for the test repo
SOURCES = {"core": (CORE,), "scaling": (CORE,), "vision": ("packages/bench-vision/src", CORE)}

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",  # no user configuration (hooks, signing) leaks in
}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, env=ENV, capture_output=True, text=True, check=True).stdout.strip()


def commit(root: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def _record(make_test_record):
    def make(estimator: str, seed: int, commit_hash: str):
        record = make_test_record(benchmark="core", task="t", dataset="d", config="c", estimator=estimator, seed=seed)
        return dataclasses.replace(record, provenance=dataclasses.replace(record.provenance, git_commit=commit_hash))

    return make


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    git(root, "init", "-q", "-b", "main")
    c1 = commit(
        root,
        {"packages/core/src/fg2u/a.py": "x = 1\n", "packages/bench-vision/src/v/b.py": "y = 1\n", "docs/i.md": "a\n"},
        "C1",
    )
    c2 = commit(root, {"packages/bench-vision/src/v/b.py": "y = 2\n"}, "C2")
    git(root, "checkout", "-q", "-b", "side")
    b1 = commit(root, {"docs/i.md": "side\n"}, "B1")
    git(root, "checkout", "-q", "main")
    c3 = commit(root, {"packages/core/src/fg2u/a.py": "x = 2\n"}, "C3")
    c4 = commit(root, {"docs/i.md": "b\n"}, "C4")
    return root, {"C1": c1, "C2": c2, "C3": c3, "C4": c4, "B1": b1}


@pytest.mark.parametrize(
    "benchmark,at,status",
    [
        ("core", "C1", "stale"),
        ("core", "C2", "stale"),  # the core changed in C3
        ("core", "C3", "current"),  # the last change itself
        ("core", "C4", "current"),  # a later commit that did not touch the sources
        ("core", "B1", "stale"),  # a branch without C3
        ("vision", "C1", "stale"),  # bench-vision changed in C2 (and the core in C3)
        ("vision", "C2", "stale"),  # its own change is in, the core's is not
        ("vision", "C4", "current"),
        ("scaling", "C3", "current"),
    ],
)
def test_verdicts_follow_the_history(repo, benchmark, at, status):
    root, commits = repo
    (verdict,) = staleness([{"benchmark": benchmark, "git_commit": commits[at]}], root, SOURCES)
    assert verdict.status == status
    assert verdict.last_change == commits["C3"]  # the last change of every declared path set here
    assert verdict.paths == SOURCES[benchmark]


def test_dirty_and_abbreviated_commits_count_as_their_commit(repo):
    root, commits = repo
    records = [
        {"benchmark": "core", "git_commit": commits["C3"] + "+dirty"},
        {"benchmark": "core", "git_commit": commits["C2"][:10] + "+dirty"},
    ]
    assert [v.status for v in staleness(records, root, SOURCES)] == ["current", "stale"]


def test_unknown_commits_benchmarks_and_repositories_are_never_stale(repo, tmp_path):
    root, commits = repo
    records = [
        {"benchmark": "core", "git_commit": "0" * 40},  # not in this repository
        {"benchmark": "core", "git_commit": None},
        {"benchmark": "core", "git_commit": ""},
        {"benchmark": "unheard-of", "git_commit": commits["C1"]},  # no declared sources
    ]
    assert [v.status for v in staleness(records, root, SOURCES)] == ["unknown"] * 4
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    (verdict,) = staleness([{"benchmark": "core", "git_commit": commits["C1"]}], outside, SOURCES)
    assert verdict.status == "unknown"


def test_records_as_result_records_and_groups(repo, _record):
    root, commits = repo

    def rec(estimator, seed, at):
        return _record(estimator, seed, commits[at])

    records = [rec("A", 0, "C2"), rec("A", 1, "C4"), rec("B", 0, "C4")]
    assert [v.status for v in staleness(records, root, SOURCES)] == ["stale", "current", "current"]
    summaries, _ = summarize(records)
    stale = stale_groups(summaries, root, SOURCES)
    assert [(s.key.estimator, [v.commit for v in verdicts]) for s, verdicts in stale] == [("A", [commits["C2"]])]


def test_declared_sources_come_from_the_benchmark_declarations():
    """The core's own benchmarks measure the core package; every other declared benchmark its own package
    (where its entry point's module lives, inside this repository) and the core."""
    sources = declared_sources(ROOT)
    assert sources["core"] == (CORE,)
    for name, paths in sources.items():
        assert paths[-1] == CORE and all((ROOT / p).is_dir() for p in paths), (name, paths)
    assert declared_sources(ROOT / "packages" / "core" / "tests") == {}  # fg2u lies outside that "repository"


def test_render_lists_the_stale_groups(repo, monkeypatch, _record):
    """render_all in a results folder inside the repository: LEADERBOARD.md gets a "Stale records" section
    naming the stale group, its commit and the last change; a current group is not listed."""
    root, commits = repo
    monkeypatch.setattr(staleness_module, "declared_sources", lambda repo_root: SOURCES)  # fg2u is not in the repo
    results = root / "results"
    bench = Benchmark(
        name="core",
        title="core",
        smoke_command=None,
        order=1,
        metrics=(Metric("test_accuracy", "lower", "", "m"),),
        columns=(),
    )
    for estimator, at in (("Old", "C2"), ("New", "C4")):
        append_records(results / "core" / "r.jsonl", [_record(estimator, 0, commits[at])])
    out = render_all(results, plots=False, benchmarks=[bench], warn=False)
    text = out["markdown"].read_text()
    section = text.split("## Stale records", 1)[1]
    assert "1 group(s) hold" in section and "/Old" in section and "/New" not in section
    assert f"**core**: 1 group(s), run at {commits['C2'][:7]}; code last changed at {commits['C3'][:7]}" in section
    assert [s.key.estimator for s, _ in out["stale"]] == ["Old"]
