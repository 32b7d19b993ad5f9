#!/usr/bin/env python
"""Converts result records of schema 1 (one flat ``settings`` dict, ``peak_memory_bytes``, ``git_commit``) to the
one schema of :mod:`fg2u.experiment.records` (schema 2), in place.

    python scripts/migrate_records.py results            # every results/**/*.jsonl (baselines/ excluded)
    python scripts/migrate_records.py --check results    # exit 1 if a schema-1 line is left

Each benchmark's schema-1 settings are split by the key lists below into the settings that define the problem
(``problem_settings``, which the leaderboard compares on), the estimator's (``estimator_settings``), the rest
of the configuration (``config_settings``) and per-run outputs (``details``). Memory: a deterministic compiled
measure becomes ``Memory("xla_temp_bytes")``, a fresh-process peak-RSS growth ``"peak_rss_growth"``, and a
whole process's peak RSS ``"peak_rss"`` (never compared). Provenance keeps the commit; ``dirty`` becomes
unknown (schema 1 flagged appended result files as dirty), the command, host and CPU unknown, and the run id
``null`` (before run ids: never labelled partial). ``details["migrated_from_schema"] = 1``. Lines of schema 2
are left as they are; metric values are unchanged, so every number the leaderboard shows stays the same.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from fg2u.experiment.provenance import Provenance
from fg2u.experiment.records import Curve, Memory, ResultRecord

_VISION_PROBLEM = (
    "ipc",
    "inner_steps",
    "inner_lr",
    "inner_momentum",
    "weight_decay",
    "width",
    "depth",
    "norm_order",
    "eval_nets",
    "eval_steps",
    "eval_lr",
)
_VISION_CONFIG = (
    "name",
    "ipc",
    "width",
    "depth",
    "norm_before_relu",
    "inner_steps",
    "inner_lr",
    "inner_momentum",
    "weight_decay",
    "meta_steps",
    "meta_lr",
    "meta_lr_schedule",
    "real_batch",
    "grad_accumulation",
    "num_directions",
    "chunk_size",
    "truncation",
    "neumann_terms",
    "two_phase_fraction",
    "eval_nets",
    "eval_steps",
    "eval_lr",
    "full_epochs",
    "full_batch",
    "log_every",
)
_PDE_PROBLEM = (
    "setting",
    "unknowns",
    "observation_layout",
    "num_observations",
    "noise_level",
    "data_source",
    "solver",
    "num_points",
    "dt",
    "grid",
    "basis",
    "boundary",
    "time_stepper",
    "dealias",
    "parametrisation",
)
_PDE_ESTIMATOR = (
    "cli_estimator",
    "estimator_class",
    "num_directions",
    "eps",
    "scheme",
    "directions",
    "distribution",
    "quadrature_half_width",
    "check_finite",
    "chunk_size",
    "truncation",
)
_PDE_DETAILS = ("deviation", "initial_scan_solves", "solves_per_step", "memory_measure", "kind")
_LM_PROBLEM = (
    "data",
    "stream",
    "model_size",
    "facts_per_document",
    "distractor_sentences",
    "max_doc_tokens",
    "max_qa_tokens",
    "locality_texts",
)
_LM_ESTIMATOR = ("num_directions", "chunk_size", "distribution", "check_finite", "directions", "estimator_class")
_LM_DETAILS = ("base_params", "weight_params", "peak_rss_after", "peak_rss_before", "memory_measure", "pilot")
_CORE_PROBLEM = ("backend", "num_steps", "meta_dim", "size", "batch", "num_devices", "num_processes", "collectives")
_CORE_ESTIMATOR = (
    "alpha",
    "check_finite",
    "chunk_size",
    "distribution",
    "num_directions",
    "num_iterations",
    "num_terms",
    "segment_length",
    "truncation",
    "impl",
)


def _pick(settings: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: settings.pop(k) for k in keys if k in settings}


def _split(data: dict[str, Any]) -> tuple[dict, dict, dict, dict]:
    """(problem, estimator, config, details) settings of a schema-1 record."""
    settings = dict(data["settings"])
    benchmark, task = data["benchmark"], data["task"]
    estimator: dict[str, Any]
    if benchmark == "vision":
        nested = settings.pop("estimator_settings", None)
        estimator = dict(nested) if isinstance(nested, dict) else {"estimator": data["estimator"]}
        if "depth_used" in settings:
            settings["depth"] = settings.pop("depth_used")
        if task.startswith("gradient-quality"):
            problem = _pick(settings, (*_VISION_PROBLEM, "phi"))
            config = _pick(settings, ("measure", "reference", "repeats", "real_batch"))
            return problem, estimator, config, settings
        config_fields = {k: settings[k] for k in _VISION_CONFIG if k in settings}
        config_fields["depth"] = data["settings"].get("depth")
        problem = {k: settings[k] for k in _VISION_PROBLEM if k in settings}
        for k in set(_VISION_CONFIG) | set(_VISION_PROBLEM):
            settings.pop(k, None)
        return problem, estimator, {**config_fields, "init": "noise"}, settings
    if benchmark == "pde":
        problem = _pick(settings, _PDE_PROBLEM)
        estimator = {"estimator": data["estimator"], **_pick(settings, _PDE_ESTIMATOR)}
        details = _pick(settings, _PDE_DETAILS)
        return problem, estimator, settings, details
    if benchmark == "lm":
        keys = (*_LM_PROBLEM, "num_steps") if task == "memory" else _LM_PROBLEM
        problem = _pick(settings, keys)
        nested = settings.pop("estimator", None)
        estimator = {"estimator": data["estimator"], **_pick(settings, _LM_ESTIMATOR)}
        if isinstance(nested, dict):
            estimator.update(nested)
        details = _pick(settings, _LM_DETAILS)
        return problem, estimator, settings, details
    problem = _pick(settings, _CORE_PROBLEM)
    estimator = {"estimator": data["estimator"], **_pick(settings, _CORE_ESTIMATOR)}
    details = _pick(settings, ("versions", "memory_measure"))
    return problem, estimator, settings, details


def _memory(data: dict[str, Any], metrics: dict[str, float]) -> Memory | None:
    measure = str(data["settings"].get("memory_measure", "")).lower()
    if "meta_step_temp_bytes" in metrics:  # vision: XLA's memory of one compiled meta step
        return Memory("xla_temp_bytes", int(metrics.pop("meta_step_temp_bytes")))
    if data["benchmark"] == "vision" and data["task"].startswith("gradient-quality"):
        value = metrics.pop("memory_bytes", None)
        if value is not None and math.isfinite(value) and ("xla" in measure or "compiled" in measure):
            return Memory("xla_temp_bytes", int(value))
        return None
    peak = data.get("peak_memory_bytes")
    if peak is None or not math.isfinite(float(peak)):
        return None
    if "xla" in measure or "compiled" in measure:
        return Memory("xla_temp_bytes", int(peak))
    if "minus_baseline" in measure or "peak_rss_delta_bytes" in metrics or "increase" in measure:
        return Memory("peak_rss_growth", int(peak))
    return Memory("peak_rss", int(peak))


def _number(value: Any) -> float:
    return float(value) if not isinstance(value, str) else float(value.lower())


def convert(data: dict[str, Any]) -> ResultRecord:
    """The schema-2 record of one schema-1 record (module docstring)."""
    if data.get("schema_version", 1) != 1:
        raise ValueError(f"not a schema-1 record (schema_version {data.get('schema_version')!r})")
    metrics = {k: _number(v) for k, v in data["metrics"].items()}
    memory = _memory(data, metrics)
    problem, estimator, config, details = _split(data)
    details = {**details, "migrated_from_schema": 1}
    commit = data.get("git_commit")
    provenance = Provenance(
        git_commit=None if commit is None else str(commit).split("+", 1)[0],
        dirty=None,
        command=(),
        host="",
        cpu="",
        accelerator=None,
        versions={str(k): str(v) for k, v in data.get("versions", {}).items()},
    )
    curve: Curve | None = None
    return ResultRecord(
        benchmark=data["benchmark"],
        task=data["task"],
        dataset=data["dataset"],
        config=data["config"],
        estimator=data["estimator"],
        estimator_spec="",
        estimator_settings=estimator,
        problem_settings=problem,
        config_settings=config,
        seed=int(data["seed"]),
        status="ok",
        metrics=metrics,
        memory=memory,
        curve=curve,
        details=details,
        wall_time_s=float(data["wall_time_s"]),
        device=data["device"],
        run_id=None,
        provenance=provenance,
        timestamp=data["timestamp"],
    )


def migrate_file(path: Path, *, check: bool = False) -> int:
    """Converts the schema-1 lines of ``path`` in place; returns how many there were."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, converted = [], 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        data = json.loads(line)
        if data.get("schema_version", 1) == 1:
            converted += 1
            if not check:
                try:
                    line = convert(data).to_json()
                except (ValueError, TypeError, KeyError) as error:
                    raise SystemExit(f"{path}:{number}: cannot convert ({error})") from None
        out.append(line)
    if converted and not check:
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in out), encoding="utf-8")
        tmp.replace(path)
    return converted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="the results folder")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if schema-1 lines are left")
    args = parser.parse_args(argv)
    total = 0
    for path in sorted(args.results.rglob("*.jsonl")):
        if "baselines" in path.relative_to(args.results).parts:
            continue
        n = migrate_file(path, check=args.check)
        if n:
            print(f"{path}: {n} schema-1 record(s) {'left' if args.check else 'converted'}")
        total += n
    if args.check and total:
        return 1
    print(f"{total} record(s) {'of schema 1 found' if args.check else 'converted'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
