"""Rotation by size and age, and the disk bound shared by every worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from src.serve.predlog.records import closed_name, segment_dir, segment_files, segment_name
from src.serve.predlog.segments import SegmentWriter

DEAD_PID = 4_000_000  # above pid_max: no such process


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def writer(tmp_path: Path, **overrides) -> SegmentWriter:
    options = {"segment_bytes": 100, "segment_seconds": 60.0, "max_bytes": 1000}
    return SegmentWriter(tmp_path, **{**options, **overrides})


def line(n: int, size: int = 25) -> bytes:
    return f"{n:0{size - 1}d}\n".encode()


def total(tmp_path: Path) -> int:
    return sum(p.stat().st_size for p in segment_files(tmp_path))


def test_rotates_before_a_line_would_cross_the_size(tmp_path: Path) -> None:
    w = writer(tmp_path)
    names = [w.append(line(i), f"id-{i}") for i in range(9)]  # 4 lines of 25 bytes fit in 100
    w.close()
    assert len(set(names)) == 3
    assert [p.stat().st_size for p in segment_files(tmp_path)] == [100, 100, 25]
    assert not [p for p in segment_files(tmp_path) if p.name.endswith(".open")]


def test_rotates_a_non_empty_segment_by_age(tmp_path: Path) -> None:
    clock = Clock()
    w = writer(tmp_path, clock=clock)
    w.rotate_if_old()  # nothing open: nothing happens
    first = w.append(line(1), "one")
    clock.now += 59
    w.rotate_if_old()
    assert w.current == first
    clock.now += 1
    w.rotate_if_old()
    assert w.current is None
    assert [p.name for p in segment_files(tmp_path)] == [first]
    assert w.append(line(2), "two") != first


def test_a_line_longer_than_a_segment_is_dropped(tmp_path: Path) -> None:
    w = writer(tmp_path)
    assert w.append(b"x" * 101, "big") is None
    assert segment_files(tmp_path) == []


def test_the_bound_holds_and_the_oldest_go_first(tmp_path: Path) -> None:
    deleted: list[str] = []
    w = writer(tmp_path, max_bytes=400, on_deleted=deleted.extend)
    largest = 0
    for i in range(200):
        w.append(line(i), f"id-{i}")
        w.flush()
        largest = max(largest, total(tmp_path))
    w.close()
    assert largest <= 400
    kept = [p.read_bytes() for p in segment_files(tmp_path)]
    assert kept[-1].endswith(line(199))  # the newest stay
    assert all(name not in {p.name for p in segment_files(tmp_path)} for name in deleted)
    assert len(deleted) + len(kept) == 50  # 200 lines, 4 per segment


def test_open_segments_of_live_workers_are_reserved_and_dead_ones_are_rotated(
    tmp_path: Path,
) -> None:
    directory = segment_dir(tmp_path)
    directory.mkdir()
    old = directory / closed_name(segment_name(1, DEAD_PID, 1))
    old.write_bytes(b"o" * 100)
    crashed = directory / segment_name(2, DEAD_PID, 2)  # a worker killed mid-segment
    crashed.write_bytes(b"c" * 60)
    live = directory / segment_name(3, os.getppid(), 1)  # another live worker's open segment
    live.write_bytes(b"l" * 10)
    w = writer(tmp_path, max_bytes=300)
    # reserve 2 open segments (the live one and this one) = 200 bytes: rotated must fit in 100
    assert w.enforce_bound(reserve_own=True) == [old.name]
    assert crashed.exists()
    assert live.exists()
    assert w.enforce_bound(reserve_own=True) == []
    w2 = writer(tmp_path, max_bytes=250)  # 50 bytes left for rotated: the crashed one goes too
    assert w2.enforce_bound(reserve_own=True) == [closed_name(crashed.name)]
    assert live.exists()


def test_a_block_is_split_where_a_segment_fills_and_ids_must_match_lines(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.append(line(0), "id-0")  # 25 bytes in the open segment: 75 left
    names = w.append_block(b"".join(line(i) for i in range(1, 5)), [f"id-{i}" for i in range(1, 5)])
    assert names[:3] == [names[0]] * 3
    assert names[3] != names[0]  # the 4th line opened another segment
    with pytest.raises(ValueError, match="2 lines for 1 request ids"):
        w.append_block(line(5) + line(6), ["id-5"])
    w.close()
    assert [p.read_bytes() for p in segment_files(tmp_path)] == [
        b"".join(line(i) for i in range(4)),
        line(4),
    ]
