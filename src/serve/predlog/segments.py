"""One worker's segment files: appending, rotation by size and age, and the disk bound.

The bound (``PREDICTION_LOG_MAX_BYTES``) covers every segment file of every worker and is
never exceeded: before a worker opens a segment it takes an exclusive ``flock`` on
``<dir>/.segments.lock`` and deletes the oldest rotated segments until

    size of rotated segments + (open segments of live workers, its own new one included)
        x PREDICTION_LOG_SEGMENT_BYTES  <=  PREDICTION_LOG_MAX_BYTES

An open segment never grows beyond ``PREDICTION_LOG_SEGMENT_BYTES`` (it is rotated before a
line would cross it) and a rotated one never grows, so between two enforcements the total can
only stay within what was reserved. A record longer than a whole segment is dropped.
Open segments of workers that no longer exist count as rotated ones (they never grow again).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from src.serve.predlog.records import (
    closed_name,
    is_open_segment,
    segment_dir,
    segment_files,
    segment_name,
    segment_pid,
)
from src.serve.processes import pid_alive

LOCK_FILE = ".segments.lock"


class SegmentWriter:
    """Appends lines to this process's open segment (one thread uses it: not thread-safe)."""

    def __init__(
        self,
        log_dir: Path,
        *,
        segment_bytes: int,
        segment_seconds: float,
        max_bytes: int,
        on_deleted: Callable[[list[str]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log_dir = log_dir
        self.directory = segment_dir(log_dir)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.segment_seconds = segment_seconds
        self.max_bytes = max_bytes
        self._on_deleted = on_deleted
        self._clock = clock
        self._pid = os.getpid()
        self._sequence = 0
        self._file: BinaryIO | None = None
        self._name = ""
        self._size = 0
        self._opened_at = 0.0

    @property
    def current(self) -> str | None:
        """The rotated name the open segment will get (None when none is open)."""
        return closed_name(self._name) if self._file is not None else None

    def append(self, line: bytes) -> str | None:
        """Append one newline-terminated line; returns the (rotated) name of the segment it
        went to, or None when the line is longer than a whole segment (dropped)."""
        size = len(line)
        if size > self.segment_bytes:
            return None
        if self._file is not None and self._size + size > self.segment_bytes:
            self.rotate()
        file = self._file if self._file is not None else self._open()
        file.write(line)
        self._size += size
        return closed_name(self._name)

    def flush(self) -> None:
        """Hand buffered lines to the operating system (they survive this process dying)."""
        if self._file is not None:
            self._file.flush()

    def rotate_if_old(self) -> None:
        """Rotate a non-empty segment opened more than ``segment_seconds`` ago."""
        if (
            self._file is not None
            and self._size
            and self._clock() - self._opened_at >= (self.segment_seconds)
        ):
            self.rotate()

    def rotate(self) -> None:
        """Close the open segment (flushed, fsynced) and give it its rotated name."""
        file, self._file = self._file, None
        if file is None:
            return
        file.flush()
        os.fsync(file.fileno())
        file.close()
        os.replace(self.directory / self._name, self.directory / closed_name(self._name))

    def close(self) -> None:
        """Rotate the open segment (at shutdown)."""
        self.rotate()

    def _open(self) -> BinaryIO:
        self.directory.mkdir(parents=True, exist_ok=True)  # recreated if removed meanwhile
        deleted = self.enforce_bound(reserve_own=True)
        self._sequence += 1
        opened = self._clock()
        self._name = segment_name(int(opened * 1000), self._pid, self._sequence)
        self._file = (self.directory / self._name).open("xb")
        self._size = 0
        self._opened_at = opened
        if deleted and self._on_deleted is not None:
            self._on_deleted(deleted)
        return self._file

    def enforce_bound(self, *, reserve_own: bool) -> list[str]:
        """Delete the oldest rotated segments until the bound holds with a full segment
        reserved for every open one (and for the one about to open); returns the deleted
        (rotated) names."""
        deleted: list[str] = []
        with (self.log_dir / LOCK_FILE).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                rotated: list[tuple[Path, int]] = []
                open_segments = 1 if reserve_own else 0
                for path in segment_files(self.log_dir):
                    pid = segment_pid(path.name)
                    if (
                        is_open_segment(path.name)
                        and pid is not None
                        and (pid == self._pid or pid_alive(pid))
                    ):
                        open_segments += 1
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        rotated.append((path, path.stat().st_size))
                total = sum(size for _, size in rotated)
                budget = self.max_bytes - open_segments * self.segment_bytes
                for path, size in rotated:  # oldest first
                    if total <= budget:
                        break
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    total -= size
                    deleted.append(closed_name(path.name))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return deleted
