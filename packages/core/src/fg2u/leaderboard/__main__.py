"""``python -m fg2u.leaderboard [render|regression|screenshot] --results results ...``.

* ``render`` (default): aggregate ``RESULTS/**/*.jsonl`` and write ``RESULTS/LEADERBOARD.md``,
  ``RESULTS/leaderboard.html`` and ``RESULTS/plots/*.png``. Exit 0; 1 with ``--strict`` when some line
  was skipped.
* ``regression``: run every installed benchmark's smoke config and the core memory benchmark (small)
  into a temporary folder, compare with ``RESULTS/baselines/`` and exit 1 on a regression;
  ``--fresh DIR`` compares records already in DIR; ``--update-baselines`` rewrites the baselines.
* ``screenshot``: render (unless ``--no-render``), then open ``RESULTS/leaderboard.html`` in headless
  Chromium at 1400 × 900 and save ``RESULTS/leaderboard.png`` (the first screen); prints the text seen
  there. Exit 2 when Chromium is not installed (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fg2u.leaderboard import browser, regression
from fg2u.leaderboard.render import render_all


def _render(args: argparse.Namespace) -> int:
    try:
        out = render_all(args.results, args.out, plots=not args.no_plots)
    except ImportError as error:
        print(f"error: {error}; or pass --no-plots to write the tables only", file=sys.stderr)
        return 2
    summaries = out["summaries"]
    print(f"{len(summaries)} group(s) from {args.results}; {len(out['issues'])} skipped line(s) or note(s)")
    print(f"wrote {out['markdown']}")
    print(f"wrote {out['html']}")
    for path in out["plots"]:
        print(f"wrote {path}")
    skipped = [i for i in out["issues"] if "malformed" in i.message or "cannot read" in i.message]
    return 1 if args.strict and skipped else 0


def _screenshot(args: argparse.Namespace) -> int:
    if browser.find_chromium() is None:
        print(
            "error: no Chromium found; install it (`apt-get update && apt-get install -y chromium` on "
            "Debian/Ubuntu) or set FG2U_CHROMIUM",
            file=sys.stderr,
        )
        return 2
    if not args.no_render:
        args.no_plots, args.strict = False, False
        code = _render(args)
        if code:
            return code
    out = Path(args.out if args.out is not None else args.results)
    page = out / "leaderboard.html"
    png = browser.screenshot(page, out / "leaderboard.png", width=args.width, height=args.height)
    seen = browser.visible_text(page, width=args.width, height=args.height)
    print(
        f"wrote {png} ({args.width} x {args.height}); first screen ({seen['width']} x {seen['height']} CSS px) shows:"
    )
    print("  " + " | ".join(seen["text"])[:1500])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("render", "regression", "screenshot", "-h", "--help"):
        argv.insert(0, "render")
    parser = argparse.ArgumentParser(
        prog="python -m fg2u.leaderboard",
        description=__doc__.replace("``", "`"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="write LEADERBOARD.md, leaderboard.html and plots")
    render.add_argument("--results", default="results", help="folder with the result records (default: results)")
    render.add_argument("--out", default=None, help="output folder (default: the results folder)")
    render.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")
    render.add_argument("--strict", action="store_true", help="exit 1 when a malformed record was skipped")
    shot = sub.add_parser("screenshot", help="render, then screenshot leaderboard.html in headless Chromium")
    shot.add_argument("--results", default="results", help="folder with the result records (default: results)")
    shot.add_argument("--out", default=None, help="output folder (default: the results folder)")
    shot.add_argument("--no-render", action="store_true", help="screenshot the existing leaderboard.html")
    shot.add_argument("--width", type=int, default=1400, help="window width in CSS pixels (default: 1400)")
    shot.add_argument("--height", type=int, default=900, help="window height in CSS pixels (default: 900)")
    reg = sub.add_parser("regression", help="compare fresh smoke runs with results/baselines")
    regression.add_arguments(reg)
    args = parser.parse_args(argv)
    if args.command == "render":
        return _render(args)
    if args.command == "screenshot":
        return _screenshot(args)
    return regression.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
