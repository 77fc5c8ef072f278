"""Segment names sort oldest first; readers skip a torn last line."""

from __future__ import annotations

from pathlib import Path

from src.serve.predlog.records import (
    closed_name,
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
