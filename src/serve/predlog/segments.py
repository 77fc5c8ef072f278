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

Each segment's id file (``idfiles.py``: 16 bytes per record) is written with it and deleted
with it, just before it; id files are outside the bound (about 5% of the segment bytes).
"""

from __future__ import annotations

import contextlib
import os
import time
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from src.serve.predlog.dirlock import exclusive
from src.serve.predlog.idfiles import ENTRY, id_key, ids_name, open_ids_name, remove_id_files
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
NEWLINE = 10


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
        self._ids_file: BinaryIO | None = None
        self._ids = array("Q")  # (key, offset) of every line of the open segment, flat
        self._ids_written = 0  # how many of them are in the open id file

    @property
    def current(self) -> str | None:
        """The rotated name the open segment will get (None when none is open)."""
        return closed_name(self._name) if self._file is not None else None

    def append(self, line: bytes, request_id: str) -> str | None:
        """Append one newline-terminated record with this ``request_id``; returns the
        (rotated) name of the segment it went to, or None when the line is longer than a
        whole segment (dropped)."""
        size = len(line)
        if size > self.segment_bytes:
            return None
        if self._file is not None and self._size + size > self.segment_bytes:
            self.rotate()
        file = self._file if self._file is not None else self._open()
        file.write(line)
        self._ids.append(id_key(request_id))
        self._ids.append(self._size)
        self._size += size
        return closed_name(self._name)

    def append_many(self, lines: Sequence[bytes], request_ids: Sequence[str]) -> list[str | None]:
        """:meth:`append` of each line; returns each one's segment (None: dropped)."""
        return [self.append(line, rid) for line, rid in zip(lines, request_ids, strict=True)]

    def append_block(self, block: bytes, request_ids: Sequence[str]) -> list[str | None]:
        """Append newline-terminated records (one per id, in order) given as one block: one
        write and one run of id entries when they fit in the open segment, else line by
        line. Returns each record's segment (None: dropped)."""
        ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == NEWLINE) + 1
        if len(ends) != len(request_ids):
            raise ValueError(f"{len(ends)} lines for {len(request_ids)} request ids")
        if not len(ends):
            return []
        starts = np.concatenate(([0], ends[:-1]))
        file = self._file
        if (
            file is None
            or self._size + len(block) > self.segment_bytes
            or int((ends - starts).max()) > self.segment_bytes
        ):
            lines = [block[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
            return self.append_many(lines, request_ids)
        entries = np.empty(len(ends), dtype=ENTRY)
        entries["key"] = list(map(id_key, request_ids))
        entries["offset"] = starts + self._size
        file.write(block)
        self._ids.frombytes(entries.tobytes())
        self._size += len(block)
        return [closed_name(self._name)] * len(ends)

    def flush(self) -> None:
        """Hand buffered lines to the operating system (they survive this process dying),
        then their id file entries (so an entry never points past the written lines)."""
        if self._file is None:
            return
        self._file.flush()
        if self._ids_written < len(self._ids):
            if self._ids_file is None:
                self._ids_file = (self.directory / open_ids_name(self._name)).open("ab")
            self._ids_file.write(self._ids[self._ids_written :].tobytes())
            self._ids_file.flush()
            self._ids_written = len(self._ids)

    def rotate_if_old(self) -> None:
        """Rotate a non-empty segment opened more than ``segment_seconds`` ago."""
        if (
            self._file is not None
            and self._size
            and self._clock() - self._opened_at >= (self.segment_seconds)
        ):
            self.rotate()

    def rotate(self) -> None:
        """Close the open segment (flushed, fsynced) and give it its rotated name, after
        writing its sorted id file."""
        file, self._file = self._file, None
        if file is None:
            return
        file.flush()
        os.fsync(file.fileno())
        file.close()
        self._write_sorted_ids()
        os.replace(self.directory / self._name, self.directory / closed_name(self._name))
        with contextlib.suppress(FileNotFoundError):
            (self.directory / open_ids_name(self._name)).unlink()

    def _write_sorted_ids(self) -> None:
        """The rotated segment's id file: every entry, sorted by key (written, fsynced and
        renamed into place before the segment is renamed)."""
        ids_file, self._ids_file = self._ids_file, None
        if ids_file is not None:
            ids_file.close()
        entries = np.frombuffer(self._ids.tobytes(), dtype=ENTRY)
        entries = entries[np.argsort(entries["key"], kind="stable")]
        self._ids, self._ids_written = array("Q"), 0
        final = self.directory / ids_name(self._name)
        temporary = final.with_name(final.name + ".tmp")
        with temporary.open("wb") as handle:
            handle.write(entries.tobytes())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)

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
        with exclusive(self.log_dir / LOCK_FILE):
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
                remove_id_files(path.parent, path.name)  # first: never an orphan
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                total -= size
                deleted.append(closed_name(path.name))
        return deleted
