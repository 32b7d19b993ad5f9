"""Result records: JSON Lines round trip, validation, and error messages naming file:line."""

import json
import math

import pytest

from fg2u.records import (
    SCHEMA_VERSION,
    RecordError,
    ResultRecord,
    append_records,
    device_description,
    make_record,
    package_versions,
    read_records,
)


def _record(seed=0, **metrics):
    return make_record(
        benchmark="core",
        task="memory",
        dataset="synthetic",
        config="smoke",
        estimator="FG2U",
        settings={"num_directions": 4, "chunk_size": None, "T": 10},
        seed=seed,
        metrics=metrics or {"temp_bytes": 1024, "wall_s": 0.5},
        wall_time_s=1.25,
        peak_memory_bytes=2048,
    )


def test_round_trip(tmp_path):
    path = tmp_path / "sub" / "run.jsonl"
    records = [_record(seed=s) for s in range(3)]
    assert append_records(path, records[:2]) == path
    append_records(path, records[2:])  # appends, does not overwrite
    back = read_records(path)
    assert back == records
    assert back[0].schema_version == SCHEMA_VERSION
    assert back[1].settings == {"num_directions": 4, "chunk_size": None, "T": 10}
    assert all(isinstance(v, float) for v in back[0].metrics.values())


def test_environment_fields_filled():
    rec = _record()
    assert rec.device == device_description() and rec.device.startswith("cpu:")
    assert "python" in rec.versions and rec.versions["fg2u"] == package_versions()["fg2u"]
    assert rec.timestamp.endswith("+00:00")
    assert rec.git_commit is None or isinstance(rec.git_commit, str)


def test_non_finite_metric_round_trips(tmp_path):
    path = tmp_path / "nan.jsonl"
    append_records(path, [_record(loss=float("nan"), gap=float("inf"))])
    (back,) = read_records(path)
    assert math.isnan(back.metrics["loss"]) and back.metrics["gap"] == math.inf


def test_make_record_rejects_non_numeric_metric():
    with pytest.raises(TypeError, match="not numbers.*'acc'"):
        _record(acc="high")
    with pytest.raises(TypeError, match="flag"):
        _record(flag=True)


def _write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = _record().to_json()
    _write_lines(path, [good, "", "{not json", good])
    with pytest.raises(RecordError, match=rf"{path.name}:3: malformed result record"):
        read_records(path)


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda d: d.pop("seed"), "missing fields \\['seed'\\]"),
        (lambda d: d.update(colour="red"), "unknown fields \\['colour'\\]"),
        (lambda d: d.update(metrics={"acc": "x"}), "metric 'acc' must be a number"),
        (lambda d: d.update(settings=[1]), "field 'settings' must be an object"),
        (lambda d: d.update(seed=1.5), "field 'seed' must be an integer"),
    ],
)
def test_invalid_fields_raise_with_reason(tmp_path, mutate, reason):
    data = json.loads(_record().to_json())
    mutate(data)
    path = tmp_path / "invalid.jsonl"
    _write_lines(path, [_record().to_json(), json.dumps(data)])
    with pytest.raises(RecordError, match=rf":2: malformed result record \({reason}"):
        read_records(path)


def test_non_strict_skips_and_warns(tmp_path, capsys):
    path = tmp_path / "mixed.jsonl"
    _write_lines(path, [_record(seed=1).to_json(), "{oops", "garbage", _record(seed=2).to_json()])
    back = read_records(path, strict=False)
    assert [r.seed for r in back] == [1, 2]
    err = capsys.readouterr().err
    assert f"{path}:2:" in err and f"{path}:3:" in err and "skipped" in err


def test_json_line_that_is_not_an_object_is_malformed(tmp_path):
    path = tmp_path / "array.jsonl"
    _write_lines(path, [_record().to_json(), "[1, 2]"])
    with pytest.raises(RecordError, match=":2: malformed result record"):
        read_records(path)


def test_from_dict_builds_record():
    data = json.loads(_record().to_json())
    assert ResultRecord.from_dict(data) == _record().__class__(**data)
