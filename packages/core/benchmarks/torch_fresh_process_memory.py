"""What torch FG²U's one-off memory in a fresh process is: resident memory phase by phase, in fresh processes.

Each measurement runs in its own ``python`` subprocess (nothing imported or cached before it). Phases:
``import torch``, ``import fg2u.torch``, building the problem (a tanh MLP, per-weight decay φ of its first
layer, T SGD steps through ``fg2u.torch.optim_transition``), then estimates. For an estimate the figure is the
peak-RSS growth during the call (``VmHWM`` after, minus ``VmRSS`` before, with the peak counter reset and freed
heap trimmed first: ``fg2u.experiment.memory.reset_peak_rss``); for an import, the RSS growth.

The finding this script documents: the first ``torch.autograd.grad`` called with explicit cotangents
(``grad_outputs``; FG²U's double-vjp kernel does, RGU's scalar backward does not) runs
``from torch.fx.experimental.symbolic_shapes import …`` in ``torch.autograd._make_grads``, which imports
sympy and mpmath: ≈ 38 MiB of resident memory and ≈ 1 s, once per process, independent of T, N and b.
Importing that module first (variant "pre-imported") moves the cost out of the estimate.

    python packages/core/benchmarks/torch_fresh_process_memory.py              # writes the JSON and the PNG
    python packages/core/benchmarks/torch_fresh_process_memory.py --depths 50 100

Outputs: ``results/core/torch_fresh_process_memory.json`` (the numbers, with torch's version and the
machine load) and ``docs/img/torch_fresh_process_memory.png`` (the figure of the estimator guide).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CHILD = r"""
import json, sys, time
from fg2u.experiment.memory import peak_rss_bytes, reset_peak_rss, rss_bytes

MIB = 2 ** 20
out = {}
def rss():
    return rss_bytes() / MIB
def peak_growth(fn):
    reset_peak_rss()
    before = rss_bytes()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    return (peak_rss_bytes() - before) / MIB, seconds

variant, T, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
import numpy
out["python + numpy"] = rss()
import torch
torch.set_num_threads(1)
out["import torch"] = rss()
import fg2u, fg2u.torch as ft
out["import fg2u.torch"] = rss()

torch.manual_seed(0)
n, h = 32, 64
X, y = torch.randn(256, n), torch.randn(256)
def inner_loss(p, phi, batch):
    return torch.mean((torch.tanh(X @ p["w1"]) @ p["w2"] - y) ** 2) + torch.sum(torch.exp(phi) * p["w1"] ** 2)
def outer_loss(s, phi, batch):
    return torch.mean((torch.tanh(X @ s.params["w1"]) @ s.params["w2"] - y) ** 2)
init, step = ft.optim_transition(inner_loss, ft.optim.sgd(0.05), {"w1": torch.randn(n, h) * 0.1, "w2": torch.randn(h) * 0.1})
problem = fg2u.UnrolledProblem(init, step, outer_loss, num_steps=T)
phi = torch.full((n, h), -3.0)
out["problem built"] = rss()

if variant == "pre-imported":
    import torch.fx.experimental.symbolic_shapes
    out["import symbolic_shapes (sympy, mpmath)"] = rss()
if variant == "toy-warmed":  # a batched vjp of a 3-vector: every lazy import and first-use of the machinery
    x = torch.ones(3, requires_grad=True)
    torch.autograd.grad((x * x).sum(), x, torch.ones(4), is_grads_batched=True)
    out["toy batched vjp"] = rss()
if variant == "rgu":
    out["RGU 1st call (peak growth)"], out["RGU 1st s"] = peak_growth(lambda: ft.RGU()(problem, phi, None))
    out["RGU 2nd call (peak growth)"], out["RGU 2nd s"] = peak_growth(lambda: ft.RGU()(problem, phi, None))
else:
    before = set(sys.modules)
    est = ft.FG2U(num_directions=b)
    out["FG2U 1st call (peak growth)"], out["FG2U 1st s"] = peak_growth(lambda: est(problem, phi, 0))
    out["modules imported by the 1st call"] = len(set(sys.modules) - before)
    out["sympy imported"] = "sympy" in sys.modules
    out["FG2U 2nd call (peak growth)"], out["FG2U 2nd s"] = peak_growth(lambda: est(problem, phi, 1))
    out["after the calls"] = rss()
print(json.dumps(out))
"""


def run_child(variant: str, depth: int, directions: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", CHILD, variant, str(depth), str(directions)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {variant} T={depth} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def figure(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.4), gridspec_kw={"width_ratios": [1.25, 1]})
    labels = [
        "import\nfg2u.torch",
        "build the\nproblem",
        "done first\n(variant)",
        "FG²U\n1st call",
        "FG²U\n2nd call",
    ]
    variants = [
        ("fresh", "fresh process", "#c44e52", None),
        (
            "pre-imported",
            "import torch.fx.experimental.symbolic_shapes first",
            "#4c72b0",
            "import symbolic_shapes (sympy, mpmath)",
        ),
        ("toy-warmed", "a batched vjp of a 3-vector first", "#55a868", "toy batched vjp"),
    ]
    w = 0.27
    for k, (name, label, color, before_key) in enumerate(variants):
        d = data["phases"][name]
        first = 0.0 if before_key is None else d[before_key] - d["problem built"]
        values = [
            d["import fg2u.torch"] - d["import torch"],
            d["problem built"] - d["import fg2u.torch"],
            first,
            d["FG2U 1st call (peak growth)"],
            d["FG2U 2nd call (peak growth)"],
        ]
        xs = [i + (k - 1) * w for i in range(len(labels))]
        ax1.bar(xs, values, w, label=label, color=color)
        for x, v in zip(xs, values):
            ax1.text(x, v + 2, f"{v:.0f}", ha="center", fontsize=7)
    ax1.set_xticks(range(len(labels)), labels, fontsize=8)
    ax1.set_ylabel("MiB: RSS growth (imports), peak RSS growth (calls)")
    fresh = data["phases"]["fresh"]
    ax1.set_title(
        f"one fresh process per variant (T = {data['phase_depth']}, b = {data['directions']}; "
        f"import torch itself: {fresh['import torch'] - fresh['python + numpy']:.0f} MiB)",
        fontsize=9,
    )
    ax1.set_ylim(0, ax1.get_ylim()[1] * 1.35)
    ax1.legend(fontsize=7, loc="upper left")

    depths = data["depths"]
    first = [data["by_depth"][str(t)]["fg2u"]["FG2U 1st call (peak growth)"] for t in depths]
    second = [data["by_depth"][str(t)]["fg2u"]["FG2U 2nd call (peak growth)"] for t in depths]
    rgu = [data["by_depth"][str(t)]["rgu"]["RGU 2nd call (peak growth)"] for t in depths]
    ax2.plot(depths, first, "o-", color="#c44e52", label="FG²U, 1st call of the process")
    ax2.plot(depths, second, "o-", color="#4c72b0", label="FG²U, 2nd call")
    ax2.plot(depths, rgu, "s--", color="#8172b2", label="RGU (reverse unrolling), 2nd call")
    ax2.set_xscale("log")
    ax2.set_xticks(depths, [str(t) for t in depths])
    ax2.minorticks_off()
    ax2.set_xlabel("unroll depth T")
    ax2.set_ylabel("peak RSS growth of one estimate (MiB)")
    ax2.set_title("the one-off does not grow with T; RGU's memory does", fontsize=10)
    ax2.legend(fontsize=8)
    fig.suptitle(
        f"torch {data['torch']}: the 1st torch.autograd.grad with cotangents imports sympy + mpmath "
        f"(FG²U's 1st call: +{data['one_off_mib']:.0f} MiB over its 2nd, once per process)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", type=int, nargs="+", default=[25, 50, 100, 200, 400])
    p.add_argument("--directions", type=int, default=4)
    p.add_argument("--json", type=Path, default=ROOT / "results" / "core" / "torch_fresh_process_memory.json")
    p.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "torch_fresh_process_memory.png")
    args = p.parse_args(argv)

    import torch

    phase_depth = 100
    data: dict = {
        "torch": torch.__version__.split("+")[0],
        "directions": args.directions,
        "phase_depth": phase_depth,
        "depths": args.depths,
        "load_average_before": os.getloadavg(),
        "phases": {v: run_child(v, phase_depth, args.directions) for v in ("fresh", "pre-imported", "toy-warmed")},
        "by_depth": {},
    }
    for depth in args.depths:
        data["by_depth"][str(depth)] = {
            "fg2u": run_child("fresh", depth, args.directions),
            "rgu": run_child("rgu", depth, args.directions),
        }
    data["load_average_after"] = os.getloadavg()
    fresh = data["phases"]["fresh"]
    data["one_off_mib"] = fresh["FG2U 1st call (peak growth)"] - fresh["FG2U 2nd call (peak growth)"]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    figure(data, args.png)
    print(json.dumps(data["phases"], indent=1))
    print(f"one-off of the 1st FG2U call: {data['one_off_mib']:.1f} MiB; wrote {args.json} and {args.png}")
    return data


if __name__ == "__main__":
    main()
