"""Which result records are stale: measured at a commit older than the last change to the code they measure.

A record carries the commit of the code that ran (``provenance.git_commit``; ``+dirty`` suffixes of older records
are ignored) and ``benchmark``. The code a benchmark measures is the core package ``fg2u`` plus the
package that declares the benchmark (its entry point in ``fg2u.benchmarks``; the core declares its own
benchmarks): `declared_sources`, which names no benchmark — the declarations do. With ``L`` the last commit
that changed those paths (``git log -1 -- paths``) and ``C`` the record's commit, the record is

* ``"current"`` when ``L`` is an ancestor of ``C`` (or is ``C``): ``git merge-base --is-ancestor L C``;
* ``"stale"`` otherwise: the measured code changed after the run (or on a branch the run did not have);
* ``"unknown"`` when ``C`` is missing, not a commit of this repository, or the benchmark has no declared
  sources, or the repository is not a git checkout — never counted as stale.

A dirty record counts as its commit: what was uncommitted cannot be known. Only git is used (no network).

    from fg2u.leaderboard.staleness import staleness
    for record, s in zip(records, staleness(records, repo_root)):   # sources: declared_sources(repo_root)
        if s.status == "stale": ...
"""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, NamedTuple

import fg2u
from fg2u.benchmarks import ENTRY_POINT_GROUP

__all__ = ["Staleness", "declared_sources", "staleness", "stale_groups"]


def _relative(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return None


def _package_dir(module: str) -> Path | None:
    """The folder of the top-level package of ``module`` (where its code lives), without importing it."""
    spec = importlib.util.find_spec(module.split(".")[0])
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def declared_sources(repo_root: str | Path) -> dict[str, tuple[str, ...]]:
    """benchmark name → the source paths (relative to ``repo_root``) its records measure: the top-level package
    that declares it (entry point group ``fg2u.benchmarks``) and the core package ``fg2u``. A benchmark whose
    declaring package lies outside ``repo_root`` (an installed copy) or fails to load is left out."""
    root = Path(repo_root).resolve()
    core = _relative(Path(fg2u.__file__).parent, root)
    out: dict[str, tuple[str, ...]] = {}
    if core is None:
        return out
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            package = _package_dir(entry_point.value.split(":")[0])
            name = entry_point.load().name
        except Exception:  # noqa: BLE001 - a broken plugin is reported by fg2u.benchmarks.discover, not here
            continue
        own = None if package is None else _relative(package, root)
        if own is not None:
            out[str(name)] = tuple(dict.fromkeys((own, core)))
    return out


class Staleness(NamedTuple):
    """The verdict on one record: ``status`` (``"current"``, ``"stale"`` or ``"unknown"``), the record's
    commit as written (``None`` if missing), the last commit that changed ``paths`` (``None`` if unknown)."""

    status: str
    commit: str | None
    last_change: str | None
    paths: tuple[str, ...]


def _field(record: Any, name: str) -> Any:
    return record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)


def _commit(record: Any) -> Any:
    """A record's commit: ``provenance.git_commit`` (schema 2), or a plain ``git_commit`` field."""
    provenance = _field(record, "provenance")
    if provenance is not None:
        return _field(provenance, "git_commit")
    return _field(record, "git_commit")


class _Git:
    """``git`` in one repository, each question asked once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._last: dict[tuple[str, ...], str | None] = {}
        self._known: dict[str, bool] = {}
        self._ancestor: dict[tuple[str, str], bool] = {}
        self.ok = self._run("rev-parse", "--is-inside-work-tree") is not None

    def _run(self, *args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    def last_change(self, paths: tuple[str, ...]) -> str | None:
        if paths not in self._last:
            self._last[paths] = self._run("log", "-1", "--format=%H", "--", *paths) or None
        return self._last[paths]

    def is_commit(self, commit: str) -> bool:
        if commit not in self._known:
            self._known[commit] = self._run("cat-file", "-e", f"{commit}^{{commit}}") is not None
        return self._known[commit]

    def is_ancestor(self, older: str, newer: str) -> bool:
        key = (older, newer)
        if key not in self._ancestor:
            try:
                code = subprocess.run(
                    ["git", "merge-base", "--is-ancestor", older, newer],
                    cwd=self.root,
                    capture_output=True,
                    timeout=60,
                    check=False,
                ).returncode
            except (OSError, subprocess.SubprocessError):
                code = 128
            self._ancestor[key] = code == 0
        return self._ancestor[key]


def staleness(
    records: Iterable[Any], repo_root: str | Path, sources: Mapping[str, Sequence[str]] | None = None
) -> list[Staleness]:
    """One `Staleness` per record, in order.

    Args:
      records: dicts or `fg2u.ResultRecord`s (anything with ``provenance.git_commit`` or ``git_commit``, and
        ``benchmark``).
      repo_root: the repository the commits belong to.
      sources: benchmark → source paths relative to ``repo_root`` (default: `declared_sources`); a record
        of a benchmark not in it is ``"unknown"``.
    """
    sources = declared_sources(repo_root) if sources is None else sources
    git = _Git(Path(repo_root))
    out = []
    for record in records:
        written = _commit(record)
        commit = written.split("+", 1)[0].strip() if isinstance(written, str) else ""
        declared = sources.get(str(_field(record, "benchmark")))
        paths = None if declared is None else tuple(declared)
        if not git.ok or not commit or paths is None or not git.is_commit(commit):
            out.append(Staleness("unknown", written, None, paths or ()))
            continue
        last = git.last_change(paths)
        if last is None:  # the paths have no history here
            out.append(Staleness("unknown", written, None, paths))
            continue
        status = "current" if git.is_ancestor(last, commit) else "stale"
        out.append(Staleness(status, written, last, paths))
    return out


def stale_groups(
    summaries: Iterable[Any], repo_root: str | Path, sources: Mapping[str, Sequence[str]] | None = None
) -> list[tuple[Any, list[Staleness]]]:
    """``[(summary, its stale verdicts)]`` for the leaderboard's groups (``GroupSummary``: ``key.benchmark``
    and ``git_commits``) that hold at least one stale record; the others are left out."""
    out = []
    summaries = list(summaries)
    verdicts = staleness(
        [{"git_commit": c, "benchmark": s.key.benchmark} for s in summaries for c in s.git_commits], repo_root, sources
    )
    i = 0
    for s in summaries:
        mine = verdicts[i : i + len(s.git_commits)]
        i += len(s.git_commits)
        stale = [v for v in mine if v.status == "stale"]
        if stale:
            out.append((s, stale))
    return out
