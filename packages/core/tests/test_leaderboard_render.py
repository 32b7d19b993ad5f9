"""Rendering: LEADERBOARD.md, self-contained leaderboard.html and PNG plots from records in tmp_path."""

from __future__ import annotations

import base64
import dataclasses
import re
import sys

import pytest

from fg2u.leaderboard.__main__ import main as cli
from fg2u.leaderboard.aggregate import summarize
from fg2u.leaderboard.render import build_tables, format_stats, render_all
from fg2u.records import append_records, make_record

_TEMPLATE = make_record(
    benchmark="vision", task="condensation", dataset="digits", config="smoke", estimator="FG2U",
    settings={}, seed=0, metrics={"test_accuracy": 0.0}, wall_time_s=1.0, device="cpu: test",
)
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def rec(benchmark, estimator, seed, metrics, settings=None, **fields):
    return dataclasses.replace(_TEMPLATE, benchmark=benchmark, estimator=estimator, seed=seed,
                               metrics=metrics, settings=settings or {}, **fields)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    vision = [rec("vision", "FG2U", s, {"test_accuracy": a}, {"ipc": 1}) for s, a in [(0, 0.60), (1, 0.64)]]
    vision += [rec("vision", "RGU", s, {"test_accuracy": a}, {"ipc": 1}) for s, a in [(0, 0.70), (1, 0.74)]]
    append_records(root / "vision" / "smoke.jsonl", vision)
    core = [
        rec("core", est, 0, {"compiled_temp_bytes": float(base * steps)}, {"num_steps": steps, "meta_dim": 64},
            task="memory", dataset="synthetic", config="small")
        for est, base in (("FG2U", 1024), ("RGU", 64 * 1024)) for steps in (4, 16, 64)
    ]
    append_records(root / "core" / "small.jsonl", core)
    with (root / "vision" / "smoke.jsonl").open("a") as f:
        f.write('{"benchmark": "vision"}\n')  # line 5: partial
    out = render_all(root, warn=False)
    return root, out


def test_markdown_has_one_table_per_benchmark_with_runs_references_and_best(results):
    root, out = results
    md = out["markdown"].read_text()
    assert out["markdown"] == root / "LEADERBOARD.md"
    assert [h for h in re.findall(r"^## (\w+)", md, re.M)] == ["core", "vision", "pde", "lm", "Plots", "Skipped"]
    vision = md.split("## vision")[1].split("## pde")[0]
    # RGU mean 0.72 beats FG2U 0.62: bold; std of (0.70, 0.74) = 0.02828 (2 digits shown)
    assert "| ours | condensation | digits | smoke | 1 | RGU | 2 | **0.72 ± 0.028** |" in vision
    assert "| ours | condensation | digits | smoke | 1 | FG2U | 2 | 0.62 ± 0.028 |" in vision
    # paper rows, converted to the column's fraction scale, in italics, with the source footnote
    assert "| _paper [1]_ | _condensation_ | _mnist_ | _paper_ | _1_ | _FG2U_ | _—_ | _0.8244_ |" in vision
    assert "[1] paper Table 1" in vision
    core = md.split("## core")[1].split("## vision")[0]
    assert "**4 KiB**" in core  # FG2U at T=4: 4 * 1024 bytes, less than RGU's 256 KiB at the same T
    assert "Settings with one value (in the runs that set them): `meta_dim=64`" in core
    lm = md.split("## lm")[1].split("## Plots")[0]
    assert "No runs recorded yet" in lm and "14.42 %" in lm
    assert f"{root / 'vision' / 'smoke.jsonl'}:5" in md.split("## Skipped")[1]


def test_html_is_self_contained_and_has_the_same_rows(results):
    root, out = results
    page = out["html"].read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing loaded from elsewhere
    assert '<td class="best">0.72 ± 0.028</td>' in page
    assert '<tr class="reference">' in page and "82.44" not in page.split("<h2")[0]
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(out["plots"]) >= 2
    assert all(base64.b64decode(i).startswith(_PNG_MAGIC) for i in images)


def test_png_plots_are_written(results):
    root, out = results
    names = sorted(p.name for p in out["plots"])
    assert names == ["memory_vs_depth_core.png", "quality_vision.png"]  # core has no quality metric
    for path in out["plots"]:
        data = path.read_bytes()
        assert path.parent == root / "plots" and data.startswith(_PNG_MAGIC) and len(data) > 5000


def test_format_stats_units_and_flags():
    (s,), _ = summarize([rec("core", "RGU", i, {"compiled_temp_bytes": 3 * 2**20, "loss": v})
                         for i, v in enumerate([1.0, float("nan")])])
    assert format_stats("compiled_temp_bytes", s.metrics["compiled_temp_bytes"]) == "3 ± 0 MiB"
    assert format_stats("loss", s.metrics["loss"], 2) == "1 (1 non-finite)"
    (m,), _ = summarize([rec("lm", "RGU", i, {"peak_memory_mib": v, "meta_train_seconds": t})
                         for i, (v, t) in enumerate([(1536.0, 0.002), (2560.0, 0.004)])])
    assert format_stats("peak_memory_mib", m.metrics["peak_memory_mib"]) == "2 ± 0.71 GiB"  # 1.5 and 2.5 GiB
    assert format_stats("meta_train_seconds", m.metrics["meta_train_seconds"]) == "3 ± 1.4 ms"
    assert format_stats("loss", s.metrics["loss"], 3) == "1 (n=2, 1 non-finite)"  # one run lacks the metric


def test_reference_without_matching_column_gets_its_own():
    summaries, _ = summarize([rec("lm", "FG2U", 0, {"nll": 2.0}, {"model_size": "distilgpt2"})])
    (lm,) = [t for t in build_tables(summaries) if t.benchmark == "lm"]
    assert "f1 (paper)" in lm.columns
    assert sum(kind == "reference" for kind, _ in lm.rows) == 6


def test_cli_render(tmp_path, capsys):
    append_records(tmp_path / "pde" / "smoke.jsonl",
                   [rec("pde", "FG2U-ZO", s, {"coef_rel_error": e}, task="burgers") for s, e in [(0, 0.02), (1, 0.04)]])
    assert cli(["render", "--results", str(tmp_path), "--no-plots"]) == 0
    md = (tmp_path / "LEADERBOARD.md").read_text()
    assert "| ours | burgers | digits | smoke | FG2U-ZO | 2 | 0.03 ± 0.014 |" in md
    assert "≈1–3 %" not in md and "≈0.01–0.03" in md  # paper range in the column's fraction unit
    assert (tmp_path / "leaderboard.html").exists() and not (tmp_path / "plots").exists()
    assert "wrote" in capsys.readouterr().out


def test_plots_without_matplotlib_say_what_to_install(tmp_path, monkeypatch, capsys):
    append_records(tmp_path / "vision" / "smoke.jsonl", [rec("vision", "FG2U", 0, {"test_accuracy": 0.5})])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "fg2u\[leaderboard\]"'):
        render_all(tmp_path, warn=False)
    assert cli(["render", "--results", str(tmp_path)]) == 2
    assert "--no-plots" in capsys.readouterr().err
    assert cli(["render", "--results", str(tmp_path), "--no-plots"]) == 0
