"""Fits, projection and figure of ``where_fg2u_wins.py`` (``python where_fg2u_wins.py analyse``).

Reads ``results/scaling/where-fg2u-wins.jsonl`` (the newest record of every configuration) and writes

* ``where-fg2u-wins-fits.json`` — every fitted law (exponents, residuals), the measured ratios and the
  projected crossovers;
* ``where-fg2u-wins.png`` — four panels: (a) memory in inner states against T with the regions where each
  estimator is the best that fits a budget M (measured points, fitted laws, projections dashed); (b) seconds
  against T, measured and fitted, with FG²U's time to a target cosine on 1 device (measured) and on D devices
  (projected); (c) the fewest devices D* with which FG²U reaches a target cosine faster than checkpointed
  reverse mode, against N (projected from the measured per-direction and exact costs), with the measured
  simulated-device points; (d) the vision ConvNet's memory against T (activations, not the state, dominate);

and prints the tables quoted by docs/where-fg2u-wins.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import scaling_laws as sl

from fg2u.experiment.records import read_records

RECORDS = "where-fg2u-wins.jsonl"
EXACT = ("RGU", "RGUCheckpointed", "RGURecursive")
STRUCTURE = {"RGU": "linear", "RGUCheckpointed": "sqrt", "RGURecursive": "log", "FG2U(b=1,c=1)": "constant"}
COLORS = {
    "RGU": "tab:red",
    "RGUCheckpointed": "tab:orange",
    "RGURecursive": "tab:purple",
    "FG2U(b=1,c=1)": "tab:blue",
    "FG2U(b=16,c=16)": "tab:cyan",
    "FG2U(b=8,c=8)": "tab:cyan",
    "plain-unroll": "tab:gray",
}
LABELS = {
    "RGU": "RGU (exact, memory ∝ T)",
    "RGUCheckpointed": "RGUCheckpointed (exact, √T)",
    "RGURecursive": "RGURecursive k=4 (exact, log T)",
    "FG2U(b=1,c=1)": "FG²U chunk 1 (any b)",
    "FG2U(b=16,c=16)": "FG²U chunk 16",
    "plain-unroll": "plain unroll (no gradient)",
}
TARGETS = (0.5, 0.9)  # target cosines of one estimate


def load(out: Path) -> dict[str, list[Any]]:
    """The newest record of each (part, family, settings, estimator), grouped by part."""
    newest: dict[tuple, Any] = {}
    for rec in read_records(out / RECORDS):
        key = (rec.config, rec.dataset, json.dumps(rec.problem_settings, sort_keys=True), rec.estimator)
        if key not in newest or rec.timestamp >= newest[key].timestamp:
            newest[key] = rec
    parts: dict[str, list[Any]] = defaultdict(list)
    for rec in newest.values():
        parts[rec.config].append(rec)
    return parts


def _ps(rec: Any, key: str) -> Any:
    return rec.problem_settings[key]


def _select(records: list[Any], family: str, estimator: str | None = None, **settings: Any) -> list[Any]:
    out = [r for r in records if r.dataset == family and (estimator is None or r.estimator == estimator)]
    for k, v in settings.items():
        out = [r for r in out if r.problem_settings.get(k) == v]
    return sorted(out, key=lambda r: (r.problem_settings["num_steps"], r.problem_settings["width"]))


def _states(rec: Any) -> float:
    return rec.metrics["compiled_temp_bytes"] / rec.problem_settings["state_bytes"]


# --------------------------------------------------------------------------------------------- memory
def memory_fits(mem: list[Any]) -> dict[str, Any]:
    """Per family and estimator: the structural law of stored states n(T) (best affine in T, √T, ln T, 1), the
    asymptotic power law of bytes in T (T ≥ 100) and the power law of bytes in the inner state's size."""
    fits: dict[str, Any] = {}
    sweeps = {"core": {"width": 10_000}, "mlp": {"width": 256, "num_train": 256}, "vision": {"width": 32}}
    size_sweeps = {
        "core": {"num_steps": 1000},
        "mlp": {"num_steps": 1000, "num_train": 256},
        "vision": {"num_steps": 300},
    }
    for family, fixed in sweeps.items():
        for name in (*EXACT, "FG2U(b=1,c=1)", "FG2U(b=16,c=16)", "plain-unroll"):
            recs = _select(mem, family, name, **fixed)
            if len(recs) < 3:
                continue
            T = np.array([_ps(r, "num_steps") for r in recs], float)
            n = np.array([_states(r) for r in recs])
            entry: dict[str, Any] = {
                "T": T.tolist(),
                "states": n.tolist(),
                "bytes": [r.metrics["compiled_temp_bytes"] for r in recs],
                "state_bytes": recs[0].problem_settings["state_bytes"],
            }
            best = sl.best_affine(T, n)
            entry["best_structural"] = dataclass_dict(best)
            if name in STRUCTURE:
                entry["structural"] = dataclass_dict(sl.fit_affine(T, n, STRUCTURE[name]))
            big = T >= 100
            if np.ptp(np.log(T[big])) > 0 and big.sum() >= 2:
                entry["power_T"] = dataclass_dict(sl.fit_power_law({"T": T[big]}, np.array(entry["bytes"])[big]))
            size = _select(mem, family, name, **size_sweeps[family])
            if len(size) >= 3:
                S = np.array([_ps(r, "state_bytes") for r in size], float)
                B = np.array([r.metrics["compiled_temp_bytes"] for r in size], float)
                entry["power_state"] = dataclass_dict(sl.fit_power_law({"S": S}, B))
                entry["power_state"]["S"] = S.tolist()
                entry["power_state"]["bytes"] = B.tolist()
            fits.setdefault(family, {})[name] = entry
    # mlp: all (T, S) points of every estimator jointly
    for name in (*EXACT, "FG2U(b=1,c=1)", "FG2U(b=16,c=16)"):
        recs = [r for r in _select(mem, "mlp", name) if r.problem_settings.get("num_train") == 256]
        if len(recs) >= 4:
            T = np.array([_ps(r, "num_steps") for r in recs], float)
            S = np.array([_ps(r, "state_bytes") for r in recs], float)
            B = np.array([r.metrics["compiled_temp_bytes"] for r in recs], float)
            keep = T >= 100
            fits["mlp"][name]["power_T_S"] = dataclass_dict(sl.fit_power_law({"T": T[keep], "S": S[keep]}, B[keep]))
    return fits


def dataclass_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def affine(d: dict[str, Any]) -> sl.AffineLaw:
    keys = ("transform", "intercept", "slope", "max_relative_residual", "rms_relative_residual", "n")
    return sl.AffineLaw(**{k: d[k] for k in keys})


def power(d: dict[str, Any]) -> sl.PowerLaw:
    keys = ("coefficient", "exponents", "rms_log_residual", "max_relative_residual", "n", "exponent_stderr")
    return sl.PowerLaw(**{k: d[k] for k in keys})


# ----------------------------------------------------------------------------------------------- time
def seconds(rec: Any, measure: str) -> float:
    return rec.metrics[measure]


def time_tables(tim: list[Any], measure: str) -> dict[str, Any]:
    """Per family: the measured seconds of every timed case, the ratios, power laws in T and in the state size,
    and the chunk model t(b, c) = α·b/c + β·b."""
    out: dict[str, Any] = {}
    for family in ("core", "mlp", "vision"):
        recs = [r for r in tim if r.dataset == family]
        if not recs:
            continue
        cases: dict[tuple, dict[str, Any]] = defaultdict(dict)
        for r in recs:
            key = (_ps(r, "num_steps"), _ps(r, "width"), r.problem_settings.get("num_train"))
            cases[key][r.estimator] = r
        rows = []
        for (T, width, num_train), by in sorted(cases.items()):
            row: dict[str, Any] = {
                "T": T,
                "width": width,
                "num_train": num_train,
                "meta_dim": next(iter(by.values())).problem_settings["meta_dim"],
                "state_bytes": next(iter(by.values())).problem_settings["state_bytes"],
                "load_1min_max": max(max(r.details["load_1min"]) for r in by.values()),
                "seconds": {name: seconds(r, measure) for name, r in by.items()},
                "seconds_min": {name: r.metrics["seconds_min"] for name, r in by.items()},
            }
            s = row["seconds"]
            per_dir = {}
            for name in s:
                if name.startswith("FG2U(b="):
                    b = int(name.split("b=")[1].split(",")[0])
                    per_dir[name] = s[name] / b
            row["per_direction"] = per_dir
            fastest = min(per_dir.values()) if per_dir else None
            row["ratios"] = {
                f"t_dir(c=1)/{x}": s["FG2U(b=1,c=1)"] / s[x] for x in EXACT if x in s and "FG2U(b=1,c=1)" in s
            }
            if fastest is not None:
                row["ratios"].update({f"t_dir(best)/{x}": fastest / s[x] for x in EXACT if x in s})
            if "plain-unroll" in s:
                row["over_plain"] = {name: v / s["plain-unroll"] for name, v in s.items()}
            rows.append(row)
        entry: dict[str, Any] = {"rows": rows}
        # chunk model at the case with the chunk sweep (b = 8, c ∈ {1, 2, 4, 8})
        for row in rows:
            chunk = {n: v for n, v in row["seconds"].items() if n.startswith("FG2U(b=8,")}
            if len(chunk) >= 3:
                cs = np.array([int(n.split("c=")[1].rstrip(")")) for n in chunk], float)
                ts = np.array(list(chunk.values()))
                design = np.column_stack([8.0 / cs, np.full_like(cs, 8.0)])
                (alpha, beta), *_ = np.linalg.lstsq(design, ts, rcond=None)
                fitted = design @ np.array([alpha, beta])
                entry["chunk_model"] = {
                    "T": row["T"],
                    "width": row["width"],
                    "alpha_per_chunk_s": float(alpha),
                    "beta_per_direction_s": float(beta),
                    "chunks": cs.tolist(),
                    "seconds": ts.tolist(),
                    "max_relative_residual": float(np.max(np.abs(fitted / ts - 1))),
                }
        # power laws: in T at the family's reference width, and in the state size at the reference T
        ref_width = {"core": 10_000, "mlp": 256, "vision": 32}[family]
        ref_T = {"core": 1000, "mlp": 100, "vision": 100}[family]
        laws: dict[str, Any] = {}
        for name in ("plain-unroll", *EXACT, "FG2U(b=1,c=1)", "FG2U(b=8,c=8)"):
            along_T = [
                r for r in rows if r["width"] == ref_width and r["num_train"] in (None, 256) and name in r["seconds"]
            ]
            if len({r["T"] for r in along_T}) >= 2:
                laws.setdefault(name, {})["T"] = dataclass_dict(
                    sl.fit_power_law({"T": [r["T"] for r in along_T]}, [r["seconds"][name] for r in along_T])
                )
            along_S = [r for r in rows if r["T"] == ref_T and r["num_train"] in (None, 256) and name in r["seconds"]]
            if len({r["state_bytes"] for r in along_S}) >= 2:
                laws.setdefault(name, {})["S"] = dataclass_dict(
                    sl.fit_power_law({"S": [r["state_bytes"] for r in along_S]}, [r["seconds"][name] for r in along_S])
                )
        entry["laws"] = laws
        out[family] = entry
    return out


# ----------------------------------------------------------------------------------------- projection
def per_device_model(t_dir: float, chunk: dict[str, Any] | None) -> Any:
    """Seconds for k directions on one device: k one-direction unrolls (chunk 1, memory flat), or one vectorised
    chunk of k (the chunk model ``α + β·k`` measured at the family's reference case, scaled to this case by
    ``t_dir / (α + β)``) when that is faster; chunking helps only where the fitted per-chunk cost α is > 0."""
    if chunk is None or chunk["alpha_per_chunk_s"] <= 0:
        return lambda k: k * t_dir
    alpha, beta = chunk["alpha_per_chunk_s"], chunk["beta_per_direction_s"]
    scale = t_dir / (alpha + beta)
    return lambda k: min(k * t_dir, scale * (alpha + beta * k))


def crossovers(times: dict[str, Any], devices: list[Any], measure: str) -> dict[str, Any]:
    """D* for every timed case: the fewest devices with which FG²U reaches cosine c faster than one exact
    meta-gradient of RGUCheckpointed / RGURecursive (on one device), with the measured per-direction seconds
    (chunk 1: memory flat; "chunked": the per-device model of :func:`per_device_model`, memory ∝ chunk), and
    the descent-rate crossover (:func:`scaling_laws.descent_crossover_devices`). The decomposition overhead is
    measured on simulated devices (:func:`decomposition_overhead`) and taken as 0 here (an all-reduce of N
    floats)."""
    overhead = decomposition_overhead(devices)
    out: dict[str, Any] = {"overhead": overhead, "cases": []}
    for family, entry in times.items():
        chunk = entry.get("chunk_model")
        for row in entry["rows"]:
            s = row["seconds"]
            if "FG2U(b=1,c=1)" not in s:
                continue
            n = row["meta_dim"]
            t_dir = s["FG2U(b=1,c=1)"]
            per_device = per_device_model(t_dir, chunk)
            case: dict[str, Any] = {
                "family": family,
                "T": row["T"],
                "width": row["width"],
                "meta_dim": n,
                "b": {str(c): sl.directions_for_cosine(c, n) for c in TARGETS},
                "t_dir": t_dir,
                "r": {x: t_dir / s[x] for x in EXACT if x in s},
                "D_star": {},
            }
            for x in ("RGUCheckpointed", "RGURecursive"):
                if x not in s:
                    continue
                for c in TARGETS:
                    b = sl.directions_for_cosine(c, n)
                    case["D_star"][f"{x} c={c} chunk 1"] = sl.crossover_devices(n, c, t_dir, s[x])
                    case["D_star"][f"{x} c={c} chunked"] = next(
                        (d for d in range(1, b + 1) if per_device(math.ceil(b / d)) < s[x]), None
                    )
                case["D_star"][f"{x} descent"] = sl.descent_crossover_devices(n, per_device, s[x])
            out["cases"].append(case)
    return out


def decomposition_overhead(devices: list[Any]) -> dict[str, Any]:
    """Per family: DirectionParallel's CPU seconds per device against one device's share run alone."""
    out: dict[str, Any] = {}
    for family in ("mlp", "core"):
        recs = [r for r in devices if r.dataset == family]
        if not recs:
            continue
        rows = []
        for d in sorted({r.details["num_devices"] for r in recs}):
            par = next(r for r in recs if r.details["num_devices"] == d and r.details["kind"] == "parallel")
            one = next(r for r in recs if r.details["num_devices"] == d and r.details["kind"] != "parallel")
            rows.append(
                {
                    "D": d,
                    "parallel_cpu_per_device_s": par.metrics["cpu_seconds_per_device"],
                    "share_alone_cpu_s": one.metrics["cpu_seconds_median"],
                    "parallel_temp_bytes_per_device": par.metrics["compiled_temp_bytes"],
                    "share_alone_temp_bytes": one.metrics["compiled_temp_bytes"],
                    "parallel_wall_min_s": par.metrics["seconds_min"],
                    "load_1min_max": max(par.details["load_1min"]),
                    "meta_dim": par.problem_settings["meta_dim"],
                    "T": par.problem_settings["num_steps"],
                    "width": par.problem_settings["width"],
                }
            )
        out[family] = rows
    return out


# ---------------------------------------------------------------------------------------------- figure
def figure(mem_fits: dict, times: dict, cross: dict, mem: list[Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(16, 12.5), gridspec_kw={"wspace": 0.32, "hspace": 0.22})
    _panel_memory(axes[0, 0], mem_fits, mem)
    _panel_time(axes[0, 1], times)
    _panel_devices(axes[1, 0], times, cross)
    _panel_vision(axes[1, 1], mem_fits, mem)
    fig.suptitle(
        "Where FG²U wins — markers: measured (2-core CPU, XLA compiled temp bytes; CPU seconds); "
        "dashed lines and shaded regions: PROJECTED from the fitted laws",
        fontsize=11,
    )
    fig.subplots_adjust(left=0.06, right=0.97, bottom=0.05, top=0.93)
    fig.savefig(path, dpi=110)
    plt.close(fig)


T_PROJ = np.logspace(1, 6, 200)


def _panel_memory(ax: Any, fits: dict, mem: list[Any]) -> None:
    mlp = fits["mlp"]
    curves = {}
    for name in (*EXACT, "FG2U(b=1,c=1)"):
        law = affine(mlp[name]["structural"])
        curves[name] = np.maximum(law(T_PROJ), 1.0)
    # regions (projected): the best exact estimator that fits a budget of M/S states, else FG²U, else nothing
    top = 3e6
    ax.fill_between(T_PROJ, curves["RGU"], top, color="tab:red", alpha=0.08)
    ax.fill_between(T_PROJ, curves["RGUCheckpointed"], np.minimum(curves["RGU"], top), color="tab:orange", alpha=0.12)
    ax.fill_between(T_PROJ, curves["RGURecursive"], curves["RGUCheckpointed"], color="tab:purple", alpha=0.12)
    ax.fill_between(T_PROJ, curves["FG2U(b=1,c=1)"], curves["RGURecursive"], color="tab:blue", alpha=0.25)
    ax.fill_between(T_PROJ, 1.0, curves["FG2U(b=1,c=1)"], color="black", alpha=0.08)
    for name, curve in curves.items():
        ax.plot(T_PROJ, curve, "--", color=COLORS[name], lw=1)
        recs = _select(mem, "mlp", name, width=256, num_train=256)
        ax.plot(
            [_ps(r, "num_steps") for r in recs], [_states(r) for r in recs], "o", color=COLORS[name], label=LABELS[name]
        )
        wide = [r for r in _select(mem, "mlp", name, num_train=256) if _ps(r, "width") != 256]
        ax.plot([_ps(r, "num_steps") for r in wide], [_states(r) for r in wide], "x", color=COLORS[name], ms=7)
    chunk16 = affine(mlp["FG2U(b=16,c=16)"]["best_structural"])
    ax.plot(T_PROJ, np.full_like(T_PROJ, chunk16(1.0)), ":", color=COLORS["FG2U(b=16,c=16)"], lw=1.5)
    recs = _select(mem, "mlp", "FG2U(b=16,c=16)", width=256, num_train=256)
    ax.plot(
        [_ps(r, "num_steps") for r in recs],
        [_states(r) for r in recs],
        "o",
        color=COLORS["FG2U(b=16,c=16)"],
        ms=4,
        label="FG²U chunk 16 (16 directions vectorised)",
    )
    budget = 80 * 2**30  # an 80 GiB device; Adam in float32: 12 bytes per parameter (params + 2 moments)
    right = ax.secondary_yaxis(
        "right",
        functions=(lambda y: budget / (12 * np.maximum(y, 1e-9)), lambda p: budget / (12 * np.maximum(p, 1e-9))),
    )
    right.set_ylabel("model size (Adam fp32 params) fitting M = 80 GiB")
    ax.text(30, 3e4, "RGU fits", color="tab:red")
    ax.text(2e4, 900, "√T-checkpointed fits", color="tab:orange", fontsize=9)
    ax.text(3e4, 60, "only RGURecursive", color="tab:purple", fontsize=9)
    ax.text(1.2e3, 5.5, "only FG²U fits (projected)", color="tab:blue", fontsize=9, weight="bold")
    ax.text(15, 1.3, "nothing fits", color="black", fontsize=9)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1, top)
    ax.set_xlabel("unroll length T")
    ax.set_ylabel("memory budget M / inner state S  (compiled temp bytes in states)")
    ax.set_title("(a) Adam-MLP: which estimator fits a budget M (o width 256, x widths 32–4096)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")


def per_step_seconds(times: dict, family: str = "mlp", width: int = 256) -> dict[str, float]:
    """Median over the timed T of seconds / T per estimator (the fitted exponents in T are 0.94–1.07, i.e. 1
    within the load noise): the linear-in-T model the projections of panel (b) and the revolve table use."""
    rows = [r for r in times[family]["rows"] if r["width"] == width and r["num_train"] in (None, 256)]
    names = {n for r in rows for n in r["seconds"]}
    return {n: float(np.median([r["seconds"][n] / r["T"] for r in rows if n in r["seconds"]])) for n in names}


T_TIME = np.logspace(1, 5, 100)


def _panel_time(ax: Any, times: dict) -> None:
    entry = times.get("mlp")
    if entry is None:
        return
    rows = [r for r in entry["rows"] if r["width"] == 256 and r["num_train"] == 256]
    step = per_step_seconds(times)
    n = rows[0]["meta_dim"]
    labels = {
        "plain-unroll": "plain unroll (no gradient)",
        "RGU": "RGU",
        "RGUCheckpointed": "RGUCheckpointed (√T)",
        "RGURecursive": "RGURecursive (k=4)",
        "FG2U(b=1,c=1)": "FG²U, ONE direction (chunk 1)",
    }
    for name, label in labels.items():
        pts = [(r["T"], r["seconds"][name]) for r in rows if name in r["seconds"]]
        ax.plot(*zip(*pts), "o", color=COLORS[name], label=label)
        ax.plot(T_TIME, step[name] * T_TIME, "--", color=COLORS[name], lw=0.8)
    for s_, style in ((3, (0, (1, 1))),):
        sweeps = np.array([sl.revolve_forward_steps(int(t), s_) / int(t) for t in T_TIME])
        ax.plot(
            T_TIME,
            (sweeps * step["plain-unroll"] + step["RGU"]) * T_TIME,
            linestyle=style,
            color="tab:brown",
            lw=1.5,
            label=f"exact, binomial checkpointing with {s_} checkpoints (≈{s_ + 3} states; analytic, not in fg2u)",
        )
    for c, d, style, alpha in ((0.5, 1, "-", 0.9), (0.5, 64, "-", 0.45), (0.9, 1, ":", 0.9)):
        b = sl.directions_for_cosine(c, n)
        label = f"FG²U to cosine {c} (b = {b}) on D = {d}" + (" devices (projected)" if d > 1 else "")
        ax.plot(
            T_TIME,
            math.ceil(b / d) * step["FG2U(b=1,c=1)"] * T_TIME,
            style,
            color="tab:blue",
            alpha=alpha,
            lw=2.2,
            label=label,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("unroll length T")
    ax.set_ylabel("CPU seconds per meta-gradient")
    ax.set_title(
        f"(b) Adam-MLP width 256, N = {n}: seconds (lines ∝ T, projected)",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper left")


def _panel_devices(ax: Any, times: dict, cross: dict) -> None:
    ns = np.logspace(1, 6, 80)
    styles = (
        (0.5, 1, "-", "cosine 0.5, t_dir/t_exact in [1/2, 1): D* = b"),
        (0.5, 2, "-.", "cosine 0.5, t_dir/t_exact in [1/3, 1/2): D* = b/2"),
        (0.9, 1, "--", "cosine 0.9, t_dir/t_exact in [1/2, 1): D* = b"),
    )
    for c, k, style, label in styles:
        ys = [math.ceil(sl.directions_for_cosine(c, int(n)) / k) for n in ns]
        ax.plot(ns, ys, style, color="tab:green", lw=1.5, label=f"{label} (projected)")
    lower = [math.ceil(sl.directions_for_cosine(0.5, int(n)) / 1) for n in ns]
    ax.fill_between(ns, lower, 1e7, color="tab:green", alpha=0.08)
    ax.text(
        15,
        2e4,
        "above the solid line: FG²U reaches\ncosine 0.5 before one √T-checkpointed\ngradient is done (projected)",
        fontsize=8,
        color="darkgreen",
    )
    ax.text(2e4, 2, "exact reverse mode faster", fontsize=8, color="tab:red")
    for case in cross["cases"]:
        d_star = case["D_star"].get("RGUCheckpointed c=0.5 chunk 1")
        if d_star is None:
            continue
        marker = {"mlp": "o", "core": "^", "vision": "*"}[case["family"]]
        ax.plot(case["meta_dim"], d_star, marker, color="k", ms=8 if marker == "*" else 5, mfc="none")
    ax.plot(
        [],
        [],
        "o",
        color="k",
        mfc="none",
        label="D* (c = 0.5) from each timed case's measured seconds: o mlp, ^ core, * vision",
    )
    wins_any = False
    for family, marker in (("mlp", "s"), ("core", "^")):
        rows = cross["overhead"].get(family, [])
        entry = times.get(family)
        if not rows or entry is None:
            continue
        for r in rows:
            ref = next(
                (
                    q
                    for q in entry["rows"]
                    if q["T"] == r["T"] and q["width"] == r["width"] and "RGUCheckpointed" in q["seconds"]
                ),
                None,
            )
            if ref is None:
                continue
            per_dir = r["parallel_cpu_per_device_s"] / (8 // r["D"])  # measured CPU seconds per direction per device
            b = sl.directions_for_cosine(0.5, r["meta_dim"])
            wins = math.ceil(b / r["D"]) * per_dir < ref["seconds"]["RGUCheckpointed"]
            wins_any |= wins
            ax.plot(
                r["meta_dim"],
                r["D"],
                marker,
                color="tab:blue" if wins else "tab:red",
                mfc=None if wins else "none",
                ms=7,
            )
    ax.plot(
        [],
        [],
        "s",
        color="tab:red",
        mfc="none",
        ms=7,
        label="measured, DirectionParallel on D simulated devices: exact faster",
    )
    if wins_any:
        ax.plot([], [], "s", color="tab:blue", ms=7, label="measured: FG²U faster")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(0.8, 1e7)
    ax.set_xlabel("meta-dimension N")
    ax.set_ylabel("devices D (one exact gradient on one device)")
    ax.set_title("(c) FG²U on D devices against one exact gradient: time to a target cosine", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")


def _panel_vision(ax: Any, fits: dict, mem: list[Any]) -> None:
    for name in ("plain-unroll", *EXACT, "FG2U(b=1,c=1)", "FG2U(b=16,c=16)"):
        recs = _select(mem, "vision", name, width=32)
        if not recs:
            continue
        ax.plot(
            [_ps(r, "num_steps") for r in recs],
            [r.metrics["compiled_temp_bytes"] / 2**20 for r in recs],
            "o-",
            color=COLORS.get(name, "k"),
            label=LABELS.get(name, name),
        )
    state = next((r.problem_settings["state_bytes"] for r in mem if r.dataset == "vision"), None)
    if state:
        ax.axhline(state / 2**20, color="k", lw=0.8)
        ax.text(110, state / 2**20 * 1.2, "one inner state (ConvNet width 32 + momentum)", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("unroll length T")
    ax.set_ylabel("compiled temp MiB")
    ax.set_title("(d) vision ConvNet (condensation, cpu config): activations dominate", fontsize=10)
    ax.legend(fontsize=8)


# ------------------------------------------------------------------------------------------ reporting
def report(mem_fits: dict, times: dict, cross: dict) -> None:
    print("\n== memory: stored states n(T) = temp bytes / one inner state; structural law and power law in T ≥ 100")
    for family, by in mem_fits.items():
        for name, e in by.items():
            line = f"  {family:6s} {name:18s} n(T) = {affine(e['best_structural']).describe()}"
            if "structural" in e and e["structural"]["transform"] != e["best_structural"]["transform"]:
                line += f"  [expected {affine(e['structural']).describe()}]"
            print(line)
            if "power_T" in e:
                print(f"  {'':6s} {'':18s} bytes ∝ {power(e['power_T']).describe()}")
            if "power_state" in e:
                print(f"  {'':6s} {'':18s} bytes ∝ {power(e['power_state']).describe()}  (state-size sweep)")
            if "power_T_S" in e:
                print(f"  {'':6s} {'':18s} bytes = {power(e['power_T_S']).describe()}  (all T ≥ 100, all widths)")
    print("\n== seconds per meta-gradient (measure above) and ratios")
    for family, entry in times.items():
        for row in entry["rows"]:
            cells = "  ".join(f"{n}={v:.4g}" for n, v in row["seconds"].items())
            ratios = "  ".join(f"{k}={v:.2f}" for k, v in row["ratios"].items())
            print(
                f"  {family:6s} T={row['T']:6d} width={row['width']:6d} N={row['meta_dim']:6d} "
                f"load≤{row['load_1min_max']:.1f}: {cells}\n  {'':6s} ratios: {ratios}"
            )
        if "chunk_model" in entry:
            cm = entry["chunk_model"]
            print(
                f"  {family:6s} chunk model at T={cm['T']} width={cm['width']}: t(b, c) = {cm['alpha_per_chunk_s']:.4g}·b/c + "
                f"{cm['beta_per_direction_s']:.4g}·b s (max rel. residual {cm['max_relative_residual']:.1%})"
            )
        for name, laws in entry["laws"].items():
            for var, law in laws.items():
                print(f"  {family:6s} {name:18s} seconds ∝ {power(law).describe(' s')}  (in {var})")
    print("\n== decomposition overhead (simulated devices, CPU seconds per device vs the share run alone)")
    for family, rows in cross["overhead"].items():
        for r in rows:
            print(
                f"  {family:6s} D={r['D']}: parallel {r['parallel_cpu_per_device_s']:.4f} s/device, share alone "
                f"{r['share_alone_cpu_s']:.4f} s; temp/device {r['parallel_temp_bytes_per_device'] / 2**20:.2f} MiB vs "
                f"{r['share_alone_temp_bytes'] / 2**20:.2f} MiB; load≤{r['load_1min_max']:.1f}"
            )
    print("\n== projected crossover D* (fewest devices for FG²U to beat one exact meta-gradient)")
    print(
        "| family | T | width | N | t_dir/t_ckpt | t_dir/t_rec | b(0.5) | b(0.9) | D* ckpt c=0.5 | c=0.9 | descent | D* rec c=0.5 | c=0.9 | descent |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case in cross["cases"]:
        d = case["D_star"]

        def cell(key: str, d: dict = d) -> str:
            chunk1, chunked = d.get(key + " chunk 1"), d.get(key + " chunked")
            text = "never" if chunk1 is None else f"{chunk1:,}"
            if chunked is not None and chunked != chunk1:
                text += f" ({chunked:,} chunked)"
            return text

        def desc(key: str, d: dict = d) -> str:
            v = d.get(key + " descent")
            return "never" if v is None else f"{v:,}"

        print(
            f"| {case['family']} | {case['T']:,} | {case['width']:,} | {case['meta_dim']:,} | "
            f"{case['r'].get('RGUCheckpointed', float('nan')):.2f} | {case['r'].get('RGURecursive', float('nan')):.2f} | "
            f"{case['b']['0.5']:,} | {case['b']['0.9']:,} | {cell('RGUCheckpointed c=0.5')} | {cell('RGUCheckpointed c=0.9')} | "
            f"{desc('RGUCheckpointed')} | {cell('RGURecursive c=0.5')} | {cell('RGURecursive c=0.9')} | {desc('RGURecursive')} |"
        )


def regimes(mem_fits: dict, budget_gib: float = 80.0, bytes_per_param: int = 12) -> list[dict[str, Any]]:
    """Adam-MLP (state-dominated) laws: per T, the largest model (Adam fp32 parameters) for which each estimator
    fits a budget of ``budget_gib`` per device — M / (bytes_per_param · n(T))."""
    mlp = mem_fits["mlp"]
    budget = budget_gib * 2**30
    rows = []
    for T in (1e2, 1e3, 1e4, 1e5, 1e6):
        row: dict[str, Any] = {"T": T}
        for name in (*EXACT, "FG2U(b=1,c=1)", "FG2U(b=16,c=16)"):
            n = float(affine(mlp[name]["best_structural"])(T))
            row[name] = {"states": n, "max_params": budget / (bytes_per_param * n)}
        rows.append(row)
    return rows


def revolve_table(times: dict) -> list[dict[str, Any]]:
    """Binomial checkpointing with s = 1, 2, 3 checkpoints (analytic: ``revolve_forward_steps / T`` extra forward
    sweeps of a plain unroll, plus one RGU) against one FG²U direction, Adam-MLP width 256, at the measured
    per-step CPU seconds (:func:`per_step_seconds`)."""
    step = per_step_seconds(times)
    rows = []
    for T in (1000, 10_000, 100_000):
        row: dict[str, Any] = {"T": T, "fg2u_direction_s": step["FG2U(b=1,c=1)"] * T}
        for s_ in (1, 2, 3):
            sweeps = sl.revolve_forward_steps(T, s_) / T
            row[f"revolve s={s_}"] = {"sweeps": sweeps, "seconds": (sweeps * step["plain-unroll"] + step["RGU"]) * T}
        rows.append(row)
    return rows


def main(out: Path, measure: str = "cpu_seconds_median") -> None:
    parts = load(out)
    mem, tim, dev = parts.get("memory", []), parts.get("time", []), parts.get("devices", [])
    mem_fits = memory_fits(mem)
    times = time_tables(tim, measure) if tim else {}
    cross = crossovers(times, dev, measure) if times else {"overhead": {}, "cases": []}
    report(mem_fits, times, cross)
    extra: dict[str, Any] = {}
    if mem_fits.get("mlp"):
        extra["regimes_80GiB"] = regimes(mem_fits)
        print("\n== Adam-MLP, M = 80 GiB per device, fp32 Adam (12 B/param): largest model that fits, by T")
        for row in extra["regimes_80GiB"]:
            cells = "  ".join(
                f"{k}: {v['states']:.1f} states ≤ {v['max_params'] / 1e6:,.0f}M" for k, v in row.items() if k != "T"
            )
            print(f"  T={row['T']:.0e}: {cells}")
    if "mlp" in times:
        extra["revolve"] = revolve_table(times)
        print("\n== binomial checkpointing (analytic) vs one FG²U direction, Adam-MLP width 256 (fitted CPU seconds)")
        for row in extra["revolve"]:
            cells = "  ".join(
                f"{k}: {v['sweeps']:.1f} sweeps, {v['seconds']:.3g} s"
                for k, v in row.items()
                if k.startswith("revolve")
            )
            print(f"  T={row['T']}: one FG²U direction {row['fg2u_direction_s']:.3g} s;  {cells}")
    (out / "where-fg2u-wins-fits.json").write_text(
        json.dumps(
            {"measure": measure, "memory": mem_fits, "time": times, "crossover": cross, **extra}, indent=1, default=str
        )
        + "\n",
        encoding="utf-8",
    )
    if mem_fits.get("mlp"):
        figure(mem_fits, times, cross, mem, out / "where-fg2u-wins.png")
        print(f"\nwrote {out / 'where-fg2u-wins.png'} and {out / 'where-fg2u-wins-fits.json'}")
