"""fg2u.experiment.records: the schema-2 record, its JSON Lines writer (atomic, newline-safe, standard JSON)
and reader (file:line of anything malformed), timestamps, statuses, Memory and Curve validation, and the
``--out`` check that runs before any work."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fg2u.experiment.provenance import Provenance, RunContext
from fg2u.experiment.records import (
    MEASURES,
    SCHEMA_VERSION,
    STATUSES,
    Curve,
    Memory,
    RecordError,
    ResultRecord,
    append_records,
    check_writable,
    iter_records,
    make_record,
    parse_timestamp,
    read_records,
    records_by_run,
)


def _strict_json(line: str):
    """``json.loads`` that refuses the NaN/Infinity tokens Python's json accepts by default (standard JSON)."""

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture
def full(make_test_record):
    """A record with every optional part: settings of the three kinds, memory, an anytime curve, details."""
    return make_test_record(
        estimator_spec="fg2u:num_directions=4",
        estimator_settings={"estimator": "FG2U", "num_directions": 4, "chunk_size": None},
        problem_settings={"ipc": 1, "inner_steps": 10},
        config_settings={"meta_lr": 0.01, "schedule": [1, 2]},
        metrics={"test_accuracy_mean": 61.5, "meta_time_s": 2.0},
        memory=Memory("xla_temp_bytes", 123_456),
        curve=Curve("test_accuracy", (0, 5, 10), (0.5, 1.0, 1.5), (10.0, 40.0, 61.5), {"solver_calls": (0, 55, 110)}),
        details={"eval_accuracies": [60.0, 63.0]},
    )


# ------------------------------------------------------------------------------------------ round trip
def test_round_trip_through_a_file_is_exact(tmp_path, full, make_test_record):
    path = tmp_path / "sub" / "smoke.jsonl"
    records = [full, make_test_record(seed=1), make_test_record(seed=2, status="diverged", metrics={})]
    assert append_records(path, records[:2]) == path  # creates the folders
    append_records(path, records[2:])  # appends, never overwrites
    back = read_records(path)
    assert back == records
    assert back[0].schema_version == SCHEMA_VERSION == 2
    assert back[0].curve.cost == {"solver_calls": (0.0, 55.0, 110.0)} and back[0].memory.deterministic
    # what the leaderboard groups by: problem settings, config and estimator settings under their prefix
    assert back[0].settings == {
        "ipc": 1,
        "inner_steps": 10,
        "config": {"meta_lr": 0.01, "schedule": [1, 2]},
        "estimator": {"estimator": "FG2U", "num_directions": 4, "chunk_size": None},
    }
    assert ResultRecord.from_dict(json.loads(full.to_json())) == full


def test_each_record_is_one_line_of_standard_json_with_sorted_keys(tmp_path, full):
    line = full.to_json()
    assert "\n" not in line
    data = _strict_json(line)
    assert list(data) == sorted(data)
    assert set(data) == {f for f in ResultRecord.__dataclass_fields__} | {"nonfinite_metrics"}
    # a newline inside a string value is escaped, so one record stays one line
    tricky = json.loads(line)
    tricky["details"] = {"note": "line one\nline two"}
    record = ResultRecord.from_dict(tricky)
    path = append_records(tmp_path / "x.jsonl", [record, record])
    assert len(path.read_bytes().splitlines()) == 2 and read_records(path)[1].details["note"] == "line one\nline two"


def test_non_finite_metrics_are_null_with_a_flag_and_read_back(tmp_path, make_test_record):
    record = make_test_record(metrics={"loss": math.nan, "gap": math.inf, "low": -math.inf, "acc": 12.5})
    assert record.nonfinite_metrics == {"loss": "nan", "gap": "inf", "low": "-inf"}
    path = append_records(tmp_path / "nan.jsonl", [record])
    (line,) = path.read_text(encoding="utf-8").splitlines()
    data = _strict_json(line)  # no NaN / Infinity tokens anywhere
    assert data["metrics"] == {"loss": None, "gap": None, "low": None, "acc": 12.5}
    assert data["nonfinite_metrics"] == {"loss": "nan", "gap": "inf", "low": "-inf"}
    (back,) = read_records(path)
    assert math.isnan(back.metrics["loss"]) and back.metrics["gap"] == math.inf and back.metrics["low"] == -math.inf
    assert back.metrics["acc"] == 12.5
    # a null without its flag is refused (a record cannot silently lose a value)
    data["nonfinite_metrics"] = {}
    with pytest.raises(ValueError, match="metric 'gap' is null without a 'nonfinite_metrics' flag"):
        ResultRecord.from_dict(data)


def test_non_finite_curve_values_are_null_and_settings_must_be_finite(tmp_path, make_test_record):
    record = make_test_record(curve=Curve("acc", (0, 1), (0.0, 1.0), (5.0, math.nan)))
    data = _strict_json(record.to_json())
    assert data["curve"]["value"] == [5.0, None]
    (back,) = read_records(append_records(tmp_path / "c.jsonl", [record]))
    assert back.curve.value[0] == 5.0 and math.isnan(back.curve.value[1])
    with pytest.raises(ValueError, match=r"problem_settings.noise is nan: settings and details must be finite"):
        make_test_record(problem_settings={"noise": math.nan}).to_json()


def test_make_record_fills_provenance_run_id_and_timestamp(make_test_record):
    template = make_test_record()
    run = RunContext("20260101T000000-abc123", "2026-01-01T00:00:00+00:00", template.provenance, "cpu: test")
    record = make_record(
        benchmark="core",
        task="memory",
        dataset="synthetic",
        config="smoke",
        estimator="FG2U",
        seed=3,
        metrics={"compiled_temp_bytes": 1024, "count": 2},
        wall_time_s=0.5,
        run=run,
    )
    assert record.run_id == "20260101T000000-abc123" and record.provenance == template.provenance
    assert record.device == "cpu: test" and record.time.tzinfo is not None
    assert all(type(v) is float for v in record.metrics.values())  # ints are stored as floats
    with pytest.raises(TypeError, match=r"not numbers: \{'acc': 'high'\}"):
        make_record(**{**_minimal(), "metrics": {"acc": "high"}}, run=run)
    with pytest.raises(TypeError, match="not numbers.*'flag': True"):
        make_record(**{**_minimal(), "metrics": {"flag": True}}, run=run)


def test_make_record_without_a_run_makes_one_now():
    record = make_record(**_minimal())
    assert record.run_id and record.provenance.host and record.provenance.command
    assert "python" in record.provenance.versions and record.provenance.versions.get("fg2u")
    assert record.timestamp.endswith("+00:00")


def _minimal():
    return dict(
        benchmark="core",
        task="t",
        dataset="d",
        config="c",
        estimator="E",
        seed=0,
        metrics={"m": 1.0},
        wall_time_s=0.0,
    )


# ---------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("status", STATUSES)
def test_every_declared_status_is_accepted(make_test_record, status):
    assert make_test_record(status=status, metrics={} if status != "ok" else {"m": 1.0}).status == status


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"status": "crashed"}, r"field 'status' must be one of \('ok', 'diverged', 'failed'\), got 'crashed'"),
        ({"metrics": {}}, "a record with status 'ok' needs at least one metric"),
        ({"seed": -1}, "field 'seed' must be an integer >= 0"),
        ({"seed": True}, "field 'seed' must be an integer >= 0"),
        ({"seed": 1.5}, "field 'seed' must be an integer >= 0"),
        ({"estimator": " "}, "field 'estimator' must be a non-empty string"),
        ({"wall_time_s": -1.0}, "field 'wall_time_s' must be a finite number >= 0"),
        ({"wall_time_s": math.inf}, "field 'wall_time_s' must be a finite number >= 0"),
        ({"metrics": {"acc": "x"}}, "metric 'acc' must be a number"),
        ({"problem_settings": [1]}, "field 'problem_settings' must be an object"),
        ({"run_id": ""}, "field 'run_id' must be a non-empty string"),
        ({"timestamp": "zzz"}, r"'timestamp' 'zzz' is not an ISO 8601 time"),
        ({"timestamp": "2026-01-01T00:00:00"}, "has no UTC offset"),
        ({"schema_version": 1}, "schema_version 1: this reader knows 2"),
    ],
)
def test_invalid_fields_are_refused_with_the_reason(make_test_record, fields, message):
    with pytest.raises(ValueError, match=message):
        make_test_record(**fields)


def test_parse_timestamp_orders_by_time_not_by_text():
    a = parse_timestamp("2026-01-01T10:00:00+02:00")  # 08:00 UTC
    b = parse_timestamp("2026-01-01T09:00:00+00:00")
    assert a < b and "2026-01-01T10:00:00+02:00" > "2026-01-01T09:00:00+00:00"  # the text order is the opposite
    for bad, message in (("zzz", "not an ISO 8601 time"), ("2026-01-01", "has no UTC offset"), (3, "must be")):
        with pytest.raises(ValueError, match=message):
            parse_timestamp(bad)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"measure": "rss", "bytes": 1}, "memory measure must be one of"),
        ({"measure": "peak_rss", "bytes": -1}, "memory bytes must be an integer >= 0"),
        ({"measure": "peak_rss", "bytes": 1.5}, "memory bytes must be an integer >= 0"),
        ({"measure": "peak_rss", "bytes": True}, "memory bytes must be an integer >= 0"),
        ({"measure": "peak_rss"}, "'memory' must be an object with 'measure' and 'bytes'"),
        ({"measure": "peak_rss", "bytes": 1, "unit": "B"}, "'memory' must be an object with 'measure' and 'bytes'"),
    ],
)
def test_memory_validation(data, message):
    with pytest.raises(ValueError, match=message):
        Memory.from_dict(data)


def test_memory_measures_say_what_may_be_compared():
    assert set(MEASURES) == {"xla_temp_bytes", "peak_rss_growth", "peak_rss"}
    xla, growth, peak = (Memory(m, 1) for m in ("xla_temp_bytes", "peak_rss_growth", "peak_rss"))
    assert (xla.deterministic, xla.comparable) == (True, True)
    assert (growth.deterministic, growth.comparable) == (False, True)
    assert (peak.deterministic, peak.comparable) == (False, False)  # a process's high-water mark
    assert Memory.from_dict(xla.to_dict()) == xla


@pytest.mark.parametrize(
    "args, message",
    [
        (("", (0,), (0.0,), (1.0,)), "curve metric must be a non-empty string"),
        (("acc", (0, 1), (0.0,), (1.0, 2.0)), "seconds has 1 points, step has 2"),
        (("acc", (0, 1), (0.0, 1.0), (1.0,)), "value has 1 points, step has 2"),
        (("acc", (0, 1), (0.0, 1.0), (1.0, 2.0), {"calls": (1,)}), "cost.calls has 1 points"),
        (("acc", (0, 5, 3), (0.0, 1.0, 2.0), (1.0, 2.0, 3.0)), r"steps must not decrease, got \[0, 5, 3\]"),
    ],
)
def test_curve_validation(args, message):
    with pytest.raises(ValueError, match=message):
        Curve(*args)


def test_curve_from_dict_names_malformed_input():
    with pytest.raises(ValueError, match="'curve' is malformed"):
        Curve.from_dict({"metric": "acc", "step": [0]})
    with pytest.raises(ValueError, match="a curve value must be a number"):
        Curve.from_dict({"metric": "acc", "step": [0], "seconds": [0.0], "value": ["x"]})
    with pytest.raises(ValueError, match="'curve' must be an object"):
        Curve.from_dict([1])


# -------------------------------------------------------------------------------------------- reading
def _lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def test_malformed_lines_are_named_by_file_and_line(tmp_path, make_test_record):
    good = make_test_record().to_json().encode()
    path = _lines(tmp_path / "bad.jsonl", [good, b"", b"{not json", b"[1, 2]", good])
    with pytest.raises(RecordError, match=rf"{path.name}:3: malformed result record"):
        read_records(path)
    assert len(read_records(path, strict=False)) == 2  # lenient: lines 3 and 4 skipped, blank line ignored


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda d: d.pop("seed"), r"missing fields \['seed'\]"),
        (lambda d: d.update(colour="red"), r"unknown fields \['colour'\]"),
        (lambda d: d.update(schema_version=1), "convert schema-1 files with scripts/migrate_records.py"),
        (lambda d: d.update(timestamp="zzz"), "'timestamp' 'zzz' is not an ISO 8601 time"),
        (lambda d: d.update(provenance={"git_commit": None}), r"'provenance' misses \['accelerator'"),
        (lambda d: d.update(memory={"measure": "vram", "bytes": 1}), "memory measure must be one of"),
    ],
)
def test_an_invalid_line_raises_with_its_line_and_reason(tmp_path, make_test_record, mutate, reason):
    data = json.loads(make_test_record().to_json())
    mutate(data)
    path = _lines(tmp_path / "invalid.jsonl", [make_test_record().to_json().encode(), json.dumps(data).encode()])
    with pytest.raises(RecordError, match=rf"invalid.jsonl:2: malformed result record \(.*{reason}"):
        read_records(path)


def test_invalid_utf8_drops_only_its_line(tmp_path, make_test_record):
    good = [make_test_record(seed=s).to_json().encode() for s in range(3)]
    broken = good[1].replace(b"condensation", b"conden\xffsation")  # one invalid byte inside a string
    path = _lines(tmp_path / "utf8.jsonl", [good[0], broken, good[2]])
    assert [r.seed for r in iter_records(path, strict=False)] == [0, 2]
    with pytest.raises(RecordError, match=r"utf8.jsonl:2: malformed result record \(.*utf-8"):
        read_records(path)


# -------------------------------------------------------------------------------------------- writing
def test_a_torn_last_line_stays_one_malformed_line_and_the_next_record_is_intact(tmp_path, make_test_record):
    path = tmp_path / "torn.jsonl"
    append_records(path, [make_test_record(seed=0)])
    whole = make_test_record(seed=1).to_json().encode()
    with path.open("ab") as f:
        f.write(whole[: len(whole) // 2])  # a kill or a full disk in the middle of a line: no newline
    append_records(path, [make_test_record(seed=2), make_test_record(seed=3)])
    lines = path.read_bytes().split(b"\n")
    assert lines[1] == whole[: len(whole) // 2] and lines[-1] == b""  # the torn part alone on line 2
    assert [r.seed for r in read_records(path, strict=False)] == [0, 2, 3]
    with pytest.raises(RecordError, match="torn.jsonl:2: malformed"):
        read_records(path)
    # a file that ends with a newline gets no blank line; nothing to write leaves the file alone
    size = path.stat().st_size
    append_records(path, [])
    assert path.stat().st_size == size
    append_records(path, [make_test_record(seed=4)])
    assert b"\n\n" not in path.read_bytes()


ROUNDS, BATCH = 40, 16  # appends per process, records per append
_APPENDER = """
import dataclasses, json, pathlib, sys, time
from fg2u.experiment.records import ResultRecord, append_records
path, seed, rounds, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
record = ResultRecord.from_dict(json.loads(pathlib.Path(path + ".template").read_text()))
go = pathlib.Path(path + ".go")
while not go.exists():  # start together
    time.sleep(0.001)
for k in range(rounds):
    append_records(path, [dataclasses.replace(record, seed=seed, details={"k": k, "pad": "x" * 3000})] * batch)
"""


def test_concurrent_appends_never_interleave(tmp_path, make_test_record):
    """Four processes append 40 batches of 16 records of ~3.5 kB each at once: every one of the 2560 lines
    parses (a writer that splits a record over several writes interleaves inside lines) and every batch is
    16 consecutive lines (a writer that writes record by record interleaves batches). Fresh interpreters (no
    fork of a process that runs JAX's threads) that start appending together. Checked against planted writers
    on 2 cores: a buffered text file written record by record fails it 3 runs of 3, one os.write per line (no
    line ever split) 4 of 4; it is a race, so a miss is possible in principle, a false alarm is not."""
    path = tmp_path / "shared.jsonl"
    Path(str(path) + ".template").write_text(make_test_record().to_json())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    workers = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, str(path), str(seed), str(ROUNDS), str(BATCH)], env=env)
        for seed in range(4)
    ]
    try:
        time.sleep(0.5)  # the interpreters start (imports) before the go
        Path(str(path) + ".go").touch()
        codes = [w.wait(timeout=120) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert codes == [0] * 4
    records = read_records(path)  # strict: one interleaved byte would be a malformed line
    assert len(records) == 4 * ROUNDS * BATCH and sorted({r.seed for r in records}) == [0, 1, 2, 3]
    batches = [{(r.seed, r.details["k"]) for r in records[i : i + BATCH]} for i in range(0, len(records), BATCH)]
    assert all(len(b) == 1 for b in batches)  # each call's records are consecutive lines: one write
    for seed in range(4):  # and each process's batches arrive in order
        assert [k for ((s, k),) in batches if s == seed] == list(range(ROUNDS))


def test_records_by_run_groups_by_run_id(make_test_record):
    a, b, c = make_test_record(run_id="r1"), make_test_record(run_id="r2", seed=1), make_test_record(run_id=None)
    assert records_by_run([a, b, c, a]) == {"r1": [a, a], "r2": [b], None: [c]}


# ---------------------------------------------------------------------------------------- check_writable
def test_check_writable_creates_the_folder_and_leaves_nothing(tmp_path):
    folder = tmp_path / "a" / "b"
    assert check_writable(folder) == folder and folder.is_dir() and list(folder.iterdir()) == []


def test_check_writable_refuses_a_path_below_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match=rf"cannot write result records to '{blocker / 'sub'}'.*choose --out"):
        check_writable(blocker / "sub")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OSError, match=r"cannot write result records to .*ro'.*Permission denied.*choose --out"):
            check_writable(folder)
    finally:
        folder.chmod(0o755)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_check_writable_refuses_a_folder_nobody_may_write_to():
    """``/proc/self`` exists and takes no new files, for root too (the test above is skipped as root)."""
    with pytest.raises(OSError, match=r"cannot write result records to '/proc/self'.*choose --out"):
        check_writable("/proc/self")


def test_provenance_round_trips_and_is_checked(make_test_record):
    provenance = make_test_record().provenance
    assert Provenance.from_dict(json.loads(json.dumps(provenance.to_dict()))) == provenance
    with pytest.raises(ValueError, match="'provenance.versions' must be an object"):
        Provenance.from_dict({**provenance.to_dict(), "versions": []})
