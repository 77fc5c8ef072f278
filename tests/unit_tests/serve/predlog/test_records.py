"""Segment names sort oldest first; readers skip a torn last line; one line per record."""

from __future__ import annotations

from pathlib import Path

import orjson

from src.serve.predlog.records import (
    closed_name,
    encode_lines,
    is_open_segment,
    read_log,
    segment_dir,
    segment_files,
    segment_name,
    segment_pid,
)


def test_names_sort_by_age_and_carry_the_pid() -> None:
    older, newer = segment_name(1_000, 99, 7), segment_name(2_000, 5, 1)
    assert sorted([newer, older]) == [older, newer]
    assert segment_pid(older) == 99
    assert is_open_segment(older)
    assert not is_open_segment(closed_name(older))
    assert segment_pid("notes.txt") is None


def test_a_torn_last_line_and_junk_are_skipped(tmp_path: Path) -> None:
    directory = segment_dir(tmp_path)
    directory.mkdir()
    (directory / closed_name(segment_name(1, 1, 1))).write_bytes(b'{"request_id": "a"}\n')
    (directory / segment_name(2, 2, 1)).write_bytes(
        b'{"request_id": "b"}\nnot json\n{"request_id": "c"}\n{"request_id": "d'
    )
    (directory / "other.txt").write_bytes(b'{"request_id": "x"}\n')
    assert [p.name.split("-")[1] for p in segment_files(tmp_path)] == [
        "0000000000001",
        "0000000000002",
    ]
    assert [r["request_id"] for r in read_log(tmp_path)] == ["a", "b", "c"]


def test_encode_lines_writes_one_whole_line_per_record() -> None:
    tricky = 'a"},{"request_id":"b\n'  # a separator and a newline inside a string
    records = [
        {"request_id": tricky, "features": {"x": 1.5}, "prediction": "p", "latency_ms": 0.4},
        {"request_id": "plain", "probabilities": {"a": 0.25}, "prediction": 3},
        {"request_id": "last", "prediction": None},
    ]
    block = encode_lines(records)
    lines = block.split(b"\n")
    assert lines[-1] == b""
    assert [orjson.loads(line) for line in lines[:-1]] == records
    assert block == b"".join(orjson.dumps(r) + b"\n" for r in records)
    assert encode_lines([]) == b""


def test_encode_lines_falls_back_when_a_record_holds_the_separator() -> None:
    # An array of objects whose second one starts with "request_id" (never in a real record)
    records = [{"request_id": "a", "odd": [{"k": 1}, {"request_id": "x"}]}]
    assert encode_lines(records) == orjson.dumps(records[0]) + b"\n"
