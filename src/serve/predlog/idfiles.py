"""Id files: where each logged prediction sits, so feedback finds it by request id.

Every segment has an id file next to it in ``segments/``, named like the segment with
``.ids`` for ``.jsonl``: ``seg-<ms>-<pid>-<seq>.ids.open`` while the segment is written,
``seg-<ms>-<pid>-<seq>.ids`` once it is rotated. An id file is a flat array of 16-byte
entries, ``(key, offset)`` as two little-endian unsigned 64-bit integers: ``key`` is
:func:`id_key` of the record's ``request_id`` and ``offset`` the byte offset of its line in
the segment. The open id file is appended in write order (one block per drain, after the
segment's lines are flushed); the rotated one is sorted by key, so a lookup is a binary
search. A key is a hash, so a match is confirmed by reading the line and comparing its
``request_id``.

Writing an entry costs a hash and 16 bytes, and nothing is ever updated in place: finding a
prediction costs a binary search per rotated segment (a scan of the open ones) when feedback
arrives, instead of an index insert per prediction on the serving path.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson

from src.serve.predlog.records import (
    CLOSED_SUFFIX,
    closed_name,
    model_description_path,
    segment_dir,
    segment_files,
)

ENTRY = np.dtype([("key", "<u8"), ("offset", "<u8")])
IDS_OPEN_SUFFIX = ".ids.open"
IDS_SUFFIX = ".ids"


class LoggedPrediction(NamedTuple):
    """What feedback needs of one logged prediction (``segment``: its rotated name)."""

    id: str
    model: str
    version: str
    task: str
    prediction: Any
    segment: str


def id_key(request_id: str) -> int:
    """A stable 64-bit hash of a request id (the same in every process)."""
    data = request_id.encode()
    return zlib.crc32(data) | zlib.adler32(data) << 32


def open_ids_name(segment: str) -> str:
    """The id file of a segment while it is written (``segment``: open or rotated name)."""
    return closed_name(segment).removesuffix(CLOSED_SUFFIX) + IDS_OPEN_SUFFIX


def ids_name(segment: str) -> str:
    """The sorted id file of a rotated segment (``segment``: open or rotated name)."""
    return closed_name(segment).removesuffix(CLOSED_SUFFIX) + IDS_SUFFIX


def remove_id_files(directory: Path, segment: str) -> None:
    """Delete both id files of a segment (those that exist)."""
    for name in (ids_name(segment), open_ids_name(segment)):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()


def _entries(directory: Path, segment: str) -> tuple[np.ndarray, bool] | None:
    """A segment's entries and whether they are sorted (None without an id file)."""
    with contextlib.suppress(FileNotFoundError):
        path = directory / ids_name(segment)
        size = path.stat().st_size
        if size < ENTRY.itemsize:
            return np.empty(0, ENTRY), True
        return np.memmap(path, dtype=ENTRY, mode="r", shape=(size // ENTRY.itemsize,)), True
    with contextlib.suppress(FileNotFoundError):
        raw = (directory / open_ids_name(segment)).read_bytes()
        whole = len(raw) - len(raw) % ENTRY.itemsize  # a block being appended may be torn
        return np.frombuffer(raw[:whole], dtype=ENTRY), False
    return None


def _candidates(entries: np.ndarray, is_sorted: bool, keys: np.ndarray) -> dict[int, list[int]]:
    """The offsets of the entries whose key is one of ``keys``, by key (in file order)."""
    column = entries["key"]
    if is_sorted:
        lo = np.searchsorted(column, keys, side="left")
        hi = np.searchsorted(column, keys, side="right")
        return {
            int(key): sorted(int(o) for o in entries["offset"][start:end])
            for key, start, end in zip(keys, lo, hi, strict=True)
            if end > start
        }
    out: dict[int, list[int]] = {}
    for index in np.flatnonzero(np.isin(column, keys)):
        out.setdefault(int(column[index]), []).append(int(entries["offset"][index]))
    return out


def _read_lines(directory: Path, segment: Path, offsets: Iterable[int]) -> dict[int, Any]:
    """The records at ``offsets`` of a segment (rotated meanwhile or not), by offset; torn
    or unreadable lines are left out."""
    for path in (segment, directory / closed_name(segment.name)):
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            continue
        records: dict[int, Any] = {}
        with handle:
            for offset in sorted(set(offsets)):
                handle.seek(offset)
                line = handle.readline()
                if line.endswith(b"\n"):
                    with contextlib.suppress(orjson.JSONDecodeError):
                        records[offset] = orjson.loads(line)
        return records
    return {}


def find_logged(log_dir: Path, ids: Iterable[str]) -> dict[str, LoggedPrediction]:
    """The first logged prediction of each of ``ids`` still in the log (oldest segment
    first); ids never logged, or whose segment was deleted, are absent."""
    wanted: dict[int, list[str]] = {}
    for request_id in dict.fromkeys(ids):
        wanted.setdefault(id_key(request_id), []).append(request_id)
    found: dict[str, LoggedPrediction] = {}
    tasks: dict[tuple[str, str], str | None] = {}
    directory = segment_dir(log_dir)
    for segment in segment_files(log_dir):
        if not wanted:
            break
        loaded = _entries(directory, segment.name)
        if loaded is None or not len(loaded[0]):
            continue
        keys = np.fromiter(wanted, dtype=np.uint64, count=len(wanted))
        candidates = _candidates(loaded[0], loaded[1], keys)
        if not candidates:
            continue
        records = _read_lines(directory, segment, (o for v in candidates.values() for o in v))
        for key, offsets in candidates.items():
            for offset in offsets:
                record = records.get(offset)
                request_id = record.get("request_id") if isinstance(record, dict) else None
                if request_id not in wanted[key]:
                    continue  # another id with the same key, or a torn line
                model, version = str(record.get("model_name")), str(record.get("model_version"))
                if (model, version) not in tasks:
                    tasks[model, version] = _task(log_dir, model, version)
                task = tasks[model, version]
                if task is not None:
                    found[request_id] = LoggedPrediction(
                        request_id, model, version, task, record.get("prediction"),
                        closed_name(segment.name),
                    )  # fmt: skip
                    wanted[key].remove(request_id)
            if not wanted[key]:
                del wanted[key]
    return found


def _task(log_dir: Path, model: str, version: str) -> str | None:
    """The task of a logged model version (from its description, written before its
    first record)."""
    try:
        task = orjson.loads(model_description_path(log_dir, model, version).read_bytes())["task"]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return str(task)
