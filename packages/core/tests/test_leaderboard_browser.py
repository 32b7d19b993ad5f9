"""leaderboard.html in a real browser (headless Chromium, 1400 x 900): the first screen shows the headline
table's caption and the FG2U row. Skipped when Chromium is not installed."""

from __future__ import annotations

import dataclasses

import pytest

from fg2u.benchmarks import Benchmark, Metric, Reference
from fg2u.experiment.records import append_records
from fg2u.leaderboard import browser
from fg2u.leaderboard.render import render_all

PLUGINS = [
    Benchmark(
        "memory",
        None,
        (Metric("compiled_temp_bytes", "lower", "bytes", "compiled memory"),),
        ("num_steps",),
        tables=("task", "config", "meta_dim"),
        labels={"num_steps": "T", "meta_dim": "N"},
        order=10,
    ),
    Benchmark(
        "quality",
        None,
        (Metric("test_accuracy", "higher", "fraction", "test accuracy"),),
        ("dataset", "ipc"),
        tables=("config",),
        labels={"ipc": "IPC"},
        order=20,
        references=(Reference("test_accuracy", "RGU", 92.32, "%", {"dataset": "digits"}, "paper Table 1"),),
    ),
]


def _records(make_test_record):
    rec = lambda **f: make_test_record(**{"benchmark": "quality", "task": "condense", **f})  # noqa: E731
    quality = [
        rec(estimator=e, seed=s, metrics={"test_accuracy": a}, problem_settings={"ipc": 1})
        for e, s, a in [("FG2U", 0, 0.60), ("FG2U", 1, 0.64), ("RGU", 0, 0.70), ("RGU", 1, 0.74)]
    ]
    memory = [
        rec(
            benchmark="memory",
            task="memory",
            dataset="synthetic",
            config="small",
            estimator=e,
            seed=0,
            metrics={"compiled_temp_bytes": float(base * steps)},
            problem_settings={"num_steps": steps, "meta_dim": 64},
        )
        for e, base in (("FG2U", 1024), ("RGU", 64 * 1024))
        for steps in (4, 16, 64)
    ]
    return quality, memory


pytestmark = pytest.mark.skipif(
    browser.find_chromium() is None,
    reason="Chromium is not installed (apt-get install -y chromium, or set FG2U_CHROMIUM): cannot render the page",
)


@pytest.fixture(scope="module")
def page(tmp_path_factory, make_test_record):
    root = tmp_path_factory.mktemp("results")
    quality, memory = _records(make_test_record)
    append_records(root / "quality" / "smoke.jsonl", quality)
    append_records(root / "memory" / "small.jsonl", memory)
    # a wide appendix table (a benchmark no plugin declares): 60 entries with long settings, the kind of
    # table that used to fill the whole first screen
    append_records(
        root / "legacy" / "wide.jsonl",
        [
            dataclasses.replace(
                r,
                benchmark="legacy",
                estimator=f"E{i}",
                problem_settings={**r.problem_settings, **{f"long_setting_{k}": f"{i}-" + "x" * 30 for k in range(8)}},
            )
            for i, r in enumerate(memory * 10)
        ],
    )
    return render_all(root, benchmarks=PLUGINS, warn=False)["html"]


def test_first_screen_shows_headline_caption_and_fg2u_row(page):
    seen = browser.visible_text(page)
    assert seen["width"] == browser.WIDTH and 700 <= seen["height"] <= browser.HEIGHT
    text = seen["text"]
    assert "memory · compiled memory ↓ lower is better" in text  # the first headline table's caption
    assert "FG2U" in text and "4 KiB" in text  # its FG2U row and first cell
    assert "quality · test accuracy (%) ↑ higher is better" in text
    assert "72 ± 2.8" in text  # the quality table's best cell too
    assert not any("long_setting_0" in t for t in text)  # the wide appendix table comes later


def test_screenshot_is_a_png_of_the_first_screen(page, tmp_path):
    png = browser.screenshot(page, tmp_path / "leaderboard.png")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (browser.WIDTH, browser.HEIGHT)
