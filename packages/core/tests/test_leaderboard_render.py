"""Rendering: headline tables, full tables, self-contained leaderboard.html and PNG plots from records in
tmp_path, with benchmark declarations given explicitly (as the entry points would)."""

from __future__ import annotations

import base64
import dataclasses
import re
import sys

import pytest

from fg2u.benchmarks import Benchmark, Metric, Reference
from fg2u.experiment.records import Memory, append_records
from fg2u.leaderboard.__main__ import main as cli
from fg2u.leaderboard.aggregate import summarize
from fg2u.leaderboard.render import build_headlines, build_tables, format_stats, format_value, render_all

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

QUALITY = Benchmark(
    name="quality",
    title="A quality benchmark",
    smoke_command=None,
    order=20,
    metrics=(Metric("test_accuracy", "higher", "fraction", "test accuracy"),),
    columns=("dataset", "ipc"),
    tables=("config",),
    labels={"ipc": "IPC"},
    references=(
        Reference("test_accuracy", "FG2U", 82.44, "%", {"dataset": "mnist", "ipc": 1}, "paper Table 1"),
        Reference("test_accuracy", "RGU", 92.32, "%", {"dataset": "digits", "ipc": 1}, "paper Table 1"),
        Reference("test_accuracy", "Other", 50.0, "%", {"dataset": "digits", "ipc": 1}, "paper Table 9"),
    ),
    yardsticks=("WholeDataset",),
)
MEMORY = Benchmark(
    name="memory",
    title="A memory benchmark",
    smoke_command=None,
    order=10,
    metrics=(Metric("compiled_temp_bytes", "lower", "bytes", "compiled memory"),),
    columns=("num_steps",),
    tables=("task", "config", "meta_dim"),
    labels={"num_steps": "T", "meta_dim": "N"},
)
PLUGINS = [QUALITY, MEMORY]


@pytest.fixture(scope="module")
def rec(make_test_record):
    """``rec(benchmark, estimator, seed, metrics, settings, **fields)``: a record from the shared factory
    (conftest.py) whose problem settings are ``settings`` (task ``condense`` unless given)."""

    def make(benchmark, estimator, seed, metrics, settings=None, **fields):
        fields.setdefault("task", "condense")
        return make_test_record(
            benchmark=benchmark,
            estimator=estimator,
            seed=seed,
            metrics=metrics,
            problem_settings=settings or {},
            **fields,
        )

    return make


def _records(rec):
    quality = [rec("quality", "FG2U", s, {"test_accuracy": a}, {"ipc": 1}) for s, a in [(0, 0.60), (1, 0.64)]]
    quality += [rec("quality", "RGU", s, {"test_accuracy": a}, {"ipc": 1}) for s, a in [(0, 0.70), (1, 0.74)]]
    quality += [
        rec("quality", "WholeDataset", s, {"test_accuracy": 0.97}, {"ipc": 1})
        for s in (0, 1)  # a yard stick
    ]
    memory = [
        rec(
            "memory",
            est,
            0,
            {"compiled_temp_bytes": float(base * steps)},
            {"num_steps": steps, "meta_dim": 64},
            task="memory",
            dataset="synthetic",
            config="small",
        )
        for est, base in (("FG2U", 1024), ("RGU", 64 * 1024))
        for steps in (4, 16, 64)
    ]
    return quality, memory


@pytest.fixture(scope="module")
def results(tmp_path_factory, rec):
    root = tmp_path_factory.mktemp("results")
    quality, memory = _records(rec)
    append_records(root / "quality" / "smoke.jsonl", quality)
    append_records(root / "memory" / "small.jsonl", memory)
    append_records(root / "other" / "x.jsonl", [rec("other", "FG2U", 0, {"score": 1.0})])  # no plugin declares it
    with (root / "quality" / "smoke.jsonl").open("a") as f:
        f.write('{"benchmark": "quality"}\n')  # line 7: partial
    out = render_all(root, benchmarks=PLUGINS, warn=False)
    return root, out


def test_headline_tables_have_estimators_as_rows_and_data_sets_as_columns(results):
    root, out = results
    md = out["markdown"].read_text()
    assert out["markdown"] == root / "LEADERBOARD.md"
    assert re.findall(r"^## (.+?)(?: —|$)", md, re.M) == [
        "memory",
        "quality",
        "Appendix: full tables",
        "Skipped records",
    ]
    head = md.split("## quality")[1].split("## Appendix")[0]
    assert "**quality · test accuracy (%) ↑ higher is better** — config smoke · n = 2 seeds per cell" in head
    # fraction shown in percent: RGU (0.70, 0.74) → 72 ± 2.8 (std 0.02828 x 100), best of the column
    assert "| estimator | digits · IPC=1 | paper |" in head
    assert "| RGU | **72 ± 2.8** | _92.32 [1]_ |" in head
    assert "| FG2U | 62 ± 2.8 |  |" in head  # the paper's FG2U number is for mnist, not digits
    assert "| _WholeDataset_ | 97 ± 0 |  |" in head  # a yard stick: after the competitors, never bold
    assert "| _Other_ | — | _50.00 [2]_ |" in head  # a published method without a run of ours gets its own row
    assert "[1] paper Table 1" in head and "[2] paper Table 9" in head
    mem = md.split("## memory")[1].split("## quality")[0]
    assert "memory · config small · N=64 · n = 1 seed per cell" in mem
    assert "| estimator | T=4 | T=16 | T=64 |" in mem
    assert "| FG2U | **4 KiB** | **16 KiB** | **64 KiB** |" in mem and "| RGU | 256 KiB | 1 MiB | 4 MiB |" in mem
    assert "![memory-compiled_temp_bytes](plots/memory-compiled_temp_bytes.png)" in mem


def test_appendix_has_the_full_tables_with_references_and_undeclared_benchmarks(results):
    root, out = results
    appendix = out["markdown"].read_text().split("## Appendix: full tables")[1]
    assert re.findall(r"^### (\w+)", appendix, re.M) == ["memory", "quality", "other"]
    quality = appendix.split("### quality")[1].split("### other")[0]
    assert "| ours | condense | digits | smoke | 1 | RGU | 2 | **0.72 ± 0.028** |" in quality
    assert (
        "| _paper [1]_ |  | _mnist_ | _paper_ | _1_ | _FG2U_ | _—_ | _0.8244_ |" in quality
    )  # in the column's fractions
    assert "no installed plugin declares this benchmark" in appendix.split("### other")[1]
    assert f"{root / 'quality' / 'smoke.jsonl'}:7" in out["markdown"].read_text().split("## Skipped")[1]


def test_html_leads_with_headlines_and_plots_and_is_self_contained(results):
    root, out = results
    page = out["html"].read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # nothing loaded from elsewhere
    first = page.index('<table class="headline"')
    assert first < page.index('id="appendix"') < page.index('<table class="full"')
    assert page.index("<img") < page.index('id="appendix"')  # plots sit beside the headline tables
    assert '<td class="best">72 ± 2.8</td>' in page and '<td class="paper">92.32 [1]</td>' in page
    assert '<td class="settings">' not in page or "min-width: 18em" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(out["plots"]) == 2
    assert all(base64.b64decode(i).startswith(_PNG_MAGIC) for i in images)


def test_png_plots_are_written_per_benchmark_and_metric(results):
    root, out = results
    assert sorted(p.name for p in out["plots"]) == ["memory-compiled_temp_bytes.png", "quality-test_accuracy.png"]
    for path in out["plots"]:
        data = path.read_bytes()
        assert path.parent == root / "plots" and data.startswith(_PNG_MAGIC) and len(data) > 5000


def test_rows_of_one_estimator_that_differ_in_a_setting_are_labelled_by_it(rec):
    records = [
        rec(
            "quality",
            "FG2U",
            s,
            {"test_accuracy": 0.5 + 0.01 * b},
            {"ipc": 1},
            estimator_settings={"num_directions": b},
        )
        for s in (0, 1)
        for b in (1, 8)
    ]
    summaries, _ = summarize(records)
    (h,), _ = build_headlines(summaries, [QUALITY])
    assert [cells[0].text for _, cells in h.rows] == [
        "FG2U (num_directions=1)",
        "FG2U (num_directions=8)",
        "RGU",
        "Other",
    ]
    assert h.rows[1][1][1].text == "58 ± 0" and h.rows[1][1][1].best


def test_format_stats_units_and_flags(rec):
    (s,), _ = summarize(
        [
            rec("memory", "RGU", i, {"compiled_temp_bytes": 3 * 2**20, "loss": v})
            for i, v in enumerate([1.0, float("nan")])
        ]
    )
    assert format_stats("compiled_temp_bytes", s.metrics["compiled_temp_bytes"]) == "3 ± 0 MiB"
    assert format_stats("compiled_temp_bytes", s.metrics["compiled_temp_bytes"], unit="bytes") == "3 ± 0 MiB"
    assert format_stats("loss", s.metrics["loss"], 2) == "1 (1 non-finite)"
    (m,), _ = summarize(
        [
            rec("lm", "RGU", i, {"peak_memory_mib": v, "meta_train_seconds": t})
            for i, (v, t) in enumerate([(1536.0, 0.002), (2560.0, 0.004)])
        ]
    )
    assert format_stats("peak_memory_mib", m.metrics["peak_memory_mib"]) == "2 ± 0.71 GiB"  # 1.5 and 2.5 GiB
    assert format_value(m.metrics["peak_memory_mib"], "MiB") == "2 ± 0.71 GiB (n=2)"
    assert format_stats("meta_train_seconds", m.metrics["meta_train_seconds"]) == "3 ± 1.4 ms"
    assert format_value(m.metrics["meta_train_seconds"], "s", show_n=False) == "3 ± 1.4 ms"
    assert format_stats("loss", s.metrics["loss"], 3) == "1 (n=2, 1 non-finite)"  # one run lacks the metric


def test_reference_without_matching_column_gets_its_own(rec):
    lm = Benchmark(
        "lm2",
        None,
        (Metric("f1", "higher", "%"),),
        ("model_size",),
        references=tuple(
            Reference("f1", e, v, "%", {"model_size": "gpt2"}, "paper") for e, v in (("FG2U", 6.0), ("RGU", 5.0))
        ),
    )
    summaries, _ = summarize([rec("lm2", "FG2U", 0, {"nll": 2.0}, {"model_size": "distilgpt2"})])
    (table,) = build_tables(summaries, [lm])
    assert "f1 (paper)" in table.columns
    assert sum(kind == "reference" for kind, _ in table.rows) == 2


def test_cli_render(tmp_path, capsys, monkeypatch, rec):
    import fg2u.leaderboard.render as render

    pde = Benchmark(
        "pde2",
        None,
        (Metric("coef_rel_error", "lower", "fraction", "coefficient error"),),
        ("task",),
        tables=("config",),
        references=(
            Reference(
                "coef_rel_error",
                "FG2U-ZO",
                1.0,
                "%",
                {"task": "burgers"},
                "paper Fig. 2",
                approximate=True,
                high=3.0,
                decimals=0,
            ),
        ),
    )
    monkeypatch.setattr(render, "discover", lambda with_issues=False: ([pde], []))
    append_records(
        tmp_path / "pde2" / "smoke.jsonl",
        [rec("pde2", "fg2u_zo", s, {"coef_rel_error": e}, task="burgers") for s, e in [(0, 0.02), (1, 0.04)]],
    )
    assert cli(["render", "--results", str(tmp_path), "--no-plots"]) == 0
    md = (tmp_path / "LEADERBOARD.md").read_text()
    assert "| fg2u_zo | 3 ± 1.4 | _≈1–3 [1]_ |" in md  # headline in percent, the paper's range beside it
    assert "| ours | burgers | digits | smoke | fg2u_zo | 2 | 0.03 ± 0.014 |" in md  # appendix: raw fraction
    assert "≈0.01–0.03" in md  # the paper range in the appendix column's fraction unit
    assert (tmp_path / "leaderboard.html").exists() and not (tmp_path / "plots").exists()
    assert "wrote" in capsys.readouterr().out


def test_plots_without_matplotlib_say_what_to_install(tmp_path, monkeypatch, capsys, rec):
    import fg2u.leaderboard.render as render

    append_records(tmp_path / "quality" / "smoke.jsonl", [rec("quality", "FG2U", 0, {"test_accuracy": 0.5})])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "fg2u\[leaderboard\]"'):
        render_all(tmp_path, benchmarks=PLUGINS, warn=False)
    monkeypatch.setattr(render, "discover", lambda with_issues=False: (PLUGINS, []))
    assert cli(["render", "--results", str(tmp_path)]) == 2
    assert "--no-plots" in capsys.readouterr().err
    assert cli(["render", "--results", str(tmp_path), "--no-plots"]) == 0


def test_row_labels_name_few_settings_that_tell_the_rows_apart():
    from fg2u.leaderboard.render import _distinguishing

    rows = [
        {"cli": cli, "cls": cls, "scan": scan, "note": "a long, constant note"}
        for cli, cls in (("fwd", "ZO"), ("cen", "ZO"), ("quad", "QuadratureZO"))
        for scan in (0, 32)
    ]
    chosen = _distinguishing(rows)
    assert chosen == ["cli", "scan"]  # "cls" only co-varies with "cli"; "note" never varies
    assert len({tuple(r[n] for n in chosen) for r in rows}) == len(rows)
    assert _distinguishing([{"a": 1}, {"a": 1}]) == []  # identical settings: nothing to show
    assert _distinguishing([{"a": 1}, {"b": 2}]) == ["a"]  # absent counts as a value


def test_a_benchmarks_own_figures_follow_its_tables_in_markdown_and_html(tmp_path, rec):
    results = tmp_path / "results"
    append_records(results / "quality" / "smoke.jsonl", _records(rec)[0])
    png = _PNG_MAGIC + b"figure bytes"
    (results / "quality" / "own-figure.png").write_bytes(png)
    bench = dataclasses.replace(QUALITY, figures=("quality/own-figure.png", "quality/not-drawn-yet.png"))
    out = render_all(results, tmp_path / "out", plots=False, benchmarks=[bench, MEMORY], warn=False)
    md = out["markdown"].read_text()
    section = md[md.index("## quality") : md.index("## Appendix")]
    assert "![own-figure](../results/quality/own-figure.png)" in section  # linked relative to the output folder
    assert "not-drawn-yet" not in md  # a declared figure that does not exist is skipped
    html_text = out["html"].read_text()
    assert base64.b64encode(png).decode() in html_text
    assert html_text.index('alt="own-figure"') < html_text.index('id="appendix"')


@pytest.mark.parametrize("figure", ["plot.svg", "/abs/plot.png", "../outside.png"])
def test_figures_must_be_relative_png_paths(figure):
    with pytest.raises(ValueError, match="figures are PNG paths"):
        dataclasses.replace(QUALITY, figures=(figure,))


# ------------------------------------------------------------------------------------- schema 2 (issue 24)
def test_headline_best_is_marked_only_among_runs_of_the_same_problem(rec):
    """Two runs in one headline column but with different problem settings (T = 10 and T = 100) are not
    competitors: neither is bold, as in the appendix (its comparison key includes the problem settings)."""
    records = [
        rec("quality", "FG2U", 0, {"test_accuracy": 0.8}, {"ipc": 1, "inner_steps": 10}),  # the highest value
        rec("quality", "RGU", 0, {"test_accuracy": 0.7}, {"ipc": 1, "inner_steps": 100}),
        rec("quality", "TRGU", 0, {"test_accuracy": 0.65}, {"ipc": 1, "inner_steps": 100}),
    ]
    summaries, _ = summarize(records)
    (h,), _ = build_headlines(summaries, [QUALITY])
    bold = {cells[0].text for _, cells in h.rows if any(c.best for c in cells[1:])}
    assert bold == {"RGU"}  # RGU beats TRGU at T = 100; FG2U (T = 10) competes with neither
    (table,) = build_tables(summaries, [QUALITY])
    column = table.columns.index("test_accuracy")
    assert {cells[table.columns.index("estimator")].text for _, cells in table.rows if cells[column].best} == bold


def test_diverged_runs_are_shown_as_non_finite_in_the_cells(rec):
    records = [rec("quality", "FG2U", s, {"test_accuracy": a}, {"ipc": 1}) for s, a in [(0, 0.60), (1, 0.64)]]
    records += [rec("quality", "FG2U", 2, {"diverged_at_step": 3.0}, {"ipc": 1}, status="diverged")]
    records += [rec("quality", "RGU", s, {"test_accuracy": 0.5}, {"ipc": 1}) for s in range(3)]
    summaries, _ = summarize(records)
    (h,), _ = build_headlines(summaries, [QUALITY])
    cells = {c[0].text: c[1].text for _, c in h.rows if c[0].text in ("FG2U", "RGU")}
    # mean of the two finished runs: 62 ± 2.8 %; every cell counts 3 runs, so no (n=...) but the diverged one
    assert cells == {"FG2U": "62 ± 2.8 (1 non-finite)", "RGU": "50 ± 0"}
    assert "n = 3 seeds per cell" in h.where
    (table,) = build_tables(summaries, [QUALITY])
    row = next(cells for _, cells in table.rows if cells[table.columns.index("estimator")].text == "FG2U")
    assert row[table.columns.index("test_accuracy")].text == "0.62 ± 0.028 (1 non-finite)"


def test_a_whole_process_peak_rss_is_never_bold(rec):
    records = [
        rec("memory", e, 0, {"loss": 1.0}, {"num_steps": 4}, memory=Memory("peak_rss", b))
        for e, b in (("FG2U", 2**20), ("RGU", 2**22))
    ]
    records += [
        rec("memory", e, 0, {"loss": 1.0}, {"num_steps": 4}, task="growth", memory=Memory("peak_rss_growth", b))
        for e, b in (("FG2U", 2**20), ("RGU", 2**22))
    ]
    summaries, _ = summarize(records)
    (table,) = build_tables(summaries, [MEMORY])
    peak, growth = (table.columns.index(n) for n in ("memory_peak_rss_bytes", "memory_peak_rss_growth_bytes"))
    assert not any(cells[peak].best for _, cells in table.rows)
    assert [cells[growth].text for _, cells in table.rows if cells[growth].best] == ["1 MiB"]
    assert table.columns.index("memory_peak_rss_bytes") > table.columns.index("memory_peak_rss_growth_bytes")


def test_implausible_values_are_skipped_with_file_and_line_and_never_shown(tmp_path, rec):
    path = tmp_path / "results" / "quality" / "smoke.jsonl"
    append_records(
        path, [rec("quality", e, 0, {"test_accuracy": a}, {"ipc": 1}) for e, a in [("FG2U", 0.6), ("RGU", 0.5)]]
    )
    append_records(path, [rec("quality", "TRGU", 0, {"test_accuracy": 1e7}, {"ipc": 1})])  # 1e9 %
    bounded = dataclasses.replace(
        QUALITY, metrics=(Metric("test_accuracy", "higher", "fraction", "test accuracy", bounds=(0.0, 1.0)),)
    )
    out = render_all(tmp_path / "results", tmp_path / "out", plots=False, benchmarks=[bounded, MEMORY], warn=False)
    md = out["markdown"].read_text()
    skipped = md.split("## Skipped records")[1]
    assert f"{path}:3: malformed result record (metric 'test_accuracy' = 10000000.0 is outside" in skipped
    tables = md.split("## Skipped records")[0]
    assert "TRGU" not in tables and "1e+07" not in tables and "| FG2U | **60** |" in tables


def test_runs_of_an_interrupted_invocation_are_labelled_partial(tmp_path, rec):
    from fg2u.experiment.provenance import RunContext, write_run_marker

    folder = tmp_path / "results" / "quality"
    done = [rec("quality", "RGU", s, {"test_accuracy": 0.7}, {"ipc": 1}, run_id="run-done") for s in (0, 1)]
    killed = [rec("quality", "FG2U", s, {"test_accuracy": 0.6}, {"ipc": 1}, run_id="run-killed") for s in (0, 1)]
    append_records(folder / "smoke.jsonl", done + killed)
    provenance = done[0].provenance
    write_run_marker(folder, RunContext("run-done", "t", provenance, "cpu"), status="complete", expected=2, written=2)
    write_run_marker(
        folder, RunContext("run-killed", "t", provenance, "cpu"), status="interrupted", expected=9, written=2
    )
    out = render_all(tmp_path / "results", tmp_path / "out", plots=False, benchmarks=[QUALITY], warn=False)
    (h,) = [h for h in out["headlines"] if h.benchmark == "quality"]
    cells = {c[0].text: c[1].text for _, c in h.rows}
    assert cells["FG2U"].endswith("(partial run)") and not cells["RGU"].endswith("(partial run)")
    (table,) = [t for t in out["tables"] if t.benchmark == "quality"]
    n = table.columns.index("n")
    shown = {cells[table.columns.index("estimator")].text: cells[n].text for kind, cells in table.rows if kind == "run"}
    assert shown["FG2U"] == "2 (2 partial)" and shown["RGU"] == "2"
