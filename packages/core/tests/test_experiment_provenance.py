"""fg2u.experiment.provenance: the commit and dirty state of the code that ran (source files only, tracked or
untracked; never results), a run's context (id, command, host, CPU, accelerator, versions) and the run markers
that label a killed invocation's records partial."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from fg2u.experiment import provenance as prov
from fg2u.experiment.provenance import (
    code_commit,
    package_versions,
    read_run_markers,
    start_run,
    write_run_marker,
)


def _git(root: Path, *args: str) -> str:
    identity = ["-c", "user.email=test@example.com", "-c", "user.name=test", "-c", "commit.gpgsign=false"]
    done = subprocess.run(["git", "-C", str(root), *identity, *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A checkout laid out like this monorepo: sources, a README, docs, results, an ignored cache."""
    root = tmp_path / "repo"
    files = {
        "packages/core/src/pkg/mod.py": "X = 1\n",
        "packages/core/README.md": "# core\n",
        "scripts/tool.py": "print('tool')\n",
        "noxfile.py": "# nox\n",
        "docs/index.md": "# docs\n",
        "results/vision/smoke.jsonl": "{}\n",
        ".gitignore": "__pycache__/\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "initial")
    return root


def test_code_commit_is_the_checkout_of_the_module_and_clean_after_commit(repo):
    head = _git(repo, "rev-parse", "HEAD")
    module = repo / "packages/core/src/pkg/mod.py"
    assert code_commit(module) == (head, False)
    assert code_commit(module.parent) == (head, False)  # a folder works too


@pytest.mark.parametrize(
    "change",
    [
        "results/vision/smoke.jsonl",  # a tracked result file appended by the run
        "results/vision/new.jsonl",  # an untracked result file
        "results/runs/x.json",  # a run marker
        "docs/index.md",  # documentation
        "packages/core/README.md",  # a package README (excluded from the source pathspec)
        "packages/core/src/pkg/__pycache__/mod.cpython-311.pyc",  # ignored by git
    ],
)
def test_results_docs_and_ignored_files_never_make_it_dirty(repo, change):
    path = repo / change
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write('{"appended": 1}\n')
    assert code_commit(repo / "packages/core/src/pkg/mod.py") == (_git(repo, "rev-parse", "HEAD"), False)


@pytest.mark.parametrize(
    "change",
    [
        "packages/core/src/pkg/mod.py",  # a tracked source file changed
        "packages/core/src/pkg/new.py",  # an untracked source file
        "packages/bench-x/src/other.py",  # in a package the run did not import
        "scripts/tool.py",
        "scripts/new_tool.py",
        "noxfile.py",
    ],
)
def test_source_changes_tracked_or_untracked_make_it_dirty(repo, change):
    path = repo / change
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write("Y = 2\n")
    assert code_commit(repo / "packages/core/src/pkg/mod.py") == (_git(repo, "rev-parse", "HEAD"), True)


def test_code_outside_git_has_no_commit(tmp_path):
    module = tmp_path / "site-packages" / "pkg" / "mod.py"
    module.parent.mkdir(parents=True)
    module.write_text("X = 1\n")
    assert code_commit(module) == (None, None)


def test_default_is_the_running_fg2u_package():
    source = Path(prov.__file__).resolve().parent.parent  # .../src/fg2u
    try:
        head = _git(source, "rev-parse", "HEAD")
    except subprocess.CalledProcessError:
        pytest.skip("fg2u is not running from a git checkout")
    commit, dirty = code_commit()
    assert commit == head and isinstance(dirty, bool)


def test_start_run_fields():
    run = start_run(["prog", "--flag"], code=Path(prov.__file__))
    other = start_run(["prog"])
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{6}", run.run_id), run.run_id
    assert run.run_id != other.run_id  # a random suffix: two invocations in one second differ
    assert run.run_id[:15] == run.started.replace("-", "").replace(":", "")[:15]  # the id starts with the time
    p = run.provenance
    assert p.command == (sys.executable, "prog", "--flag")
    assert p.host and p.cpu and p.versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "fg2u" in p.versions
    assert p.git_commit == code_commit(Path(prov.__file__))[0]
    assert run.device == prov.device_description()
    assert start_run().provenance.command[1:] == tuple(sys.argv)  # default: this process's command line


def test_package_versions_leaves_out_what_is_not_installed():
    versions = package_versions(("fg2u", "no-such-distribution-xyz"))
    assert set(versions) == {"python", "fg2u"}


def test_versions_cover_every_installed_benchmark_package_without_naming_them():
    """Issue 24 asks for all four packages' versions; the core finds the benchmark packages through their
    entry points (it names no benchmark: test_leaderboard_plugins.py)."""
    from importlib import metadata

    registered = {ep.dist.metadata["Name"] for ep in metadata.entry_points(group="fg2u.benchmarks") if ep.dist}
    assert "fg2u" in registered  # the core registers its own benchmarks
    assert prov.benchmark_distributions() == sorted(registered)
    versions = package_versions()
    assert all(versions[name] == metadata.version(name) for name in registered)
    assert {"python", "numpy"} <= set(versions)


# ------------------------------------------------------------------------------------------ accelerator
def test_accelerator_is_none_on_cpu():
    jax = pytest.importorskip("jax")
    if any(d.platform != "cpu" for d in jax.devices()):
        pytest.skip("an accelerator is visible to JAX")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        pytest.skip("a CUDA device is visible to torch")
    assert prov.accelerator() is None
    assert prov.device_description().startswith("cpu: ")


def test_accelerator_names_the_device_a_loaded_backend_sees(monkeypatch):
    device = types.SimpleNamespace(platform="gpu", device_kind="NVIDIA H200")
    fake_jax = types.SimpleNamespace(devices=lambda: [types.SimpleNamespace(platform="cpu"), device, device])
    monkeypatch.setitem(sys.modules, "jax", fake_jax)
    assert prov.accelerator() == "gpu: NVIDIA H200 x2"
    assert prov.device_description() == "gpu: NVIDIA H200 x2"
    before = dataclasses.replace(start_run([]).provenance, accelerator=None)  # as made before the import
    run = prov.RunContext("id", "2026-01-01T00:00:00+00:00", before, "cpu: x")
    refreshed = run.refresh_accelerator()  # the backend was imported after start_run
    assert refreshed.provenance.accelerator == "gpu: NVIDIA H200 x2" and refreshed.device == "gpu: NVIDIA H200 x2"


def test_accelerator_imports_no_backend():
    code = "import sys, fg2u.experiment.provenance as p; p.accelerator(); print(sorted({'jax', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------ run markers
def test_run_markers_are_written_replaced_and_read_by_run_id(tmp_path):
    run = start_run(["prog"])
    out = tmp_path / "results" / "vision"
    path = write_run_marker(out, run, status="running", expected=4, written=0)
    assert path == out / "runs" / f"{run.run_id}.json"
    first = json.loads(path.read_text())
    assert first["status"] == "running" and first["expected_records"] == 4 and first["written_records"] == 0
    assert first["started"] == run.started and first["provenance"]["command"] == list(run.provenance.command)
    write_run_marker(out, run, status="interrupted", expected=4, written=3, note="Ctrl-C")
    assert [p.name for p in (out / "runs").iterdir()] == [path.name]  # replaced in place, no temporary left
    other = start_run(["prog"])
    write_run_marker(tmp_path / "results" / "pde", other, status="complete", expected=1, written=1)
    (out / "runs" / "broken.json").write_text("{not json")
    (out / "runs" / "list.json").write_text("[1, 2]")
    markers = read_run_markers(tmp_path / "results")  # every benchmark folder below; unreadable ones skipped
    assert set(markers) == {run.run_id, other.run_id}
    assert (markers[run.run_id]["status"], markers[run.run_id]["written_records"]) == ("interrupted", 3)
    assert markers[run.run_id]["note"] == "Ctrl-C" and markers[other.run_id]["status"] == "complete"
