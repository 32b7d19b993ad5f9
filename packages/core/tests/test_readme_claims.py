"""README claims are measured: the main job's quoted time bound must contain what its last recorded run
took. The README names the records (``results/vision/cpu.jsonl``); the last run is, per estimator, the
newest record of the quick-start configuration (``cpu`` on digits) for the seed the main job runs (0);
its time is the sum of their ``wall_time_s``. When a rerun changes the time, update the README sentence
(or this test's reading of it) together with the records.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CLAIM = re.compile(
    r"The main job runs the `(?P<config>\w+)` configuration on scikit-learn's digits.*?about "
    r"(?P<low>\d+)\s*[–-]\s*(?P<high>\d+) minutes.*?writing `(?P<records>results/vision/[\w.-]+\.jsonl)`",
    re.S,
)


def last_main_job(path: Path, config: str, seed: int = 0) -> tuple[float, list[str]]:
    latest: dict[str, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec["config"] != config or rec["dataset"] != "digits" or rec["seed"] != seed:
            continue
        name = rec["estimator"]
        if name not in latest or rec["timestamp"] >= latest[name]["timestamp"]:
            latest[name] = rec
    return sum(r["wall_time_s"] for r in latest.values()), sorted(latest)


def test_readme_main_job_time_matches_the_last_recorded_run():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    claim = CLAIM.search(readme)
    assert claim, (
        "README.md no longer states the main job's time as 'The main job runs the `<config>` configuration "
        "on scikit-learn's digits … about A–B minutes … writing `results/vision/<file>.jsonl`'; keep the bound "
        "next to its records or update this test"
    )
    records = ROOT / claim["records"]
    assert records.exists(), f"README.md quotes {claim['records']}, which does not exist"
    seconds, estimators = last_main_job(records, claim["config"])
    assert estimators, f"no records of config {claim['config']!r}, seed 0 on digits in {claim['records']}"
    minutes = seconds / 60
    low, high = int(claim["low"]), int(claim["high"])
    assert low <= minutes <= high, (
        f"README.md says the main job takes about {low}–{high} minutes, but its last recorded run "
        f"({claim['records']}, seed 0, {len(estimators)} estimators: {', '.join(estimators)}) took "
        f"{minutes:.1f} minutes of wall_time_s; update the README to the record"
    )
