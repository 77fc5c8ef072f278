"""The prediction log's record format and segment files.

One record per answered prediction row, one JSON object per line (JSON Lines, UTF-8)::

    {"request_id": "order-42", "time": "2026-12-03T07:10:11.123456+00:00",
     "model_name": "iris_classifier", "model_version": "20261203T070000000000Z",
     "features": {"sepal_length": 6.7, ...}, "prediction": "virginica",
     "probabilities": {"setosa": 0.0001, ...}, "latency_ms": 0.412}

``request_id`` is the id feedback refers to: the request's id for ``/predict``, and
``<request id>/<row index>`` for row ``i`` of ``/predict/batch`` (``/`` never occurs in a
request id). ``features`` is left out when ``PREDICTION_LOG_FEATURES=false``;
``probabilities`` is null for models without them. ``latency_ms`` is the data plane's time
for the whole request (shared by the rows of a batch).

Segment files live in ``<PREDICTION_LOG_DIR>/segments/``, named
``seg-<opened, unix ms>-<pid>-<sequence>.jsonl`` so that names sort oldest first. The segment
a worker is writing ends in ``.jsonl.open``; it is renamed to ``.jsonl`` when rotated or at
shutdown. Each worker writes only its own files, so lines of different workers never
interleave. A reader skips a last line without its newline (a worker killed mid-write).
Each segment has an id file next to it (``idfiles.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

SEGMENTS_DIR = "segments"
MODELS_DIR = "models"
OPEN_SUFFIX = ".jsonl.open"
CLOSED_SUFFIX = ".jsonl"
SEGMENT_NAME = re.compile(r"^seg-(\d{13})-(\d+)-(\d+)\.jsonl(\.open)?$")


def model_description_path(log_dir: Path, model: str, version: str) -> Path:
    """Where the log keeps the description of one model version (task, features, target,
    training metrics: for the export, the live verdict and feedback lookups)."""
    return log_dir / MODELS_DIR / model / f"{version}.json"


def encode_lines(records: Sequence[dict[str, Any]]) -> bytes:
    """Records as JSON Lines, each object's first key being ``request_id``.

    One orjson call for them all, then the separators between the objects of the array
    become newlines: ``},{"request_id":`` occurs only there, since inside a JSON string every
    ``"`` is escaped and records hold no arrays. The line count is checked all the same
    (orjson escapes newlines inside strings), with one call per record as the fallback.
    """
    if not records:
        return b""
    array = orjson.dumps(records, option=orjson.OPT_SERIALIZE_NUMPY)
    block = array[1:-1].replace(b'},{"request_id":', b'}\n{"request_id":') + b"\n"
    if block.count(b"\n") != len(records):
        options = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY
        block = b"".join(orjson.dumps(record, option=options) for record in records)
    return block


def segment_dir(log_dir: Path) -> Path:
    """The directory holding the segment files of ``log_dir``."""
    return log_dir / SEGMENTS_DIR


def segment_name(opened_ms: int, pid: int, sequence: int) -> str:
    """The name of an open segment (``.open`` is dropped when it is rotated)."""
    return f"seg-{opened_ms:013d}-{pid}-{sequence:04d}{OPEN_SUFFIX}"


def closed_name(name: str) -> str:
    """The rotated name of an open segment."""
    return name.removesuffix(".open")


def segment_pid(name: str) -> int | None:
    """The pid of the worker that wrote a segment, None for other files."""
    match = SEGMENT_NAME.match(name)
    return int(match.group(2)) if match else None


def is_open_segment(name: str) -> bool:
    """True for a segment that was being written (its worker may have died since)."""
    return name.endswith(OPEN_SUFFIX) and SEGMENT_NAME.match(name) is not None


def segment_files(log_dir: Path) -> list[Path]:
    """Every segment file (rotated and open), oldest first."""
    directory = segment_dir(log_dir)
    if not directory.is_dir():
        return []
    return sorted(
        (directory / name for name in os.listdir(directory) if SEGMENT_NAME.match(name)),
        key=lambda path: path.name,
    )


def read_segment(path: Path) -> Iterator[dict[str, Any]]:
    """The whole records of one segment (a torn last line and unparseable lines skipped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # deleted by the disk bound while being read
        return
    lines = data.split(b"\n")
    for line in lines[:-1]:  # the piece after the last newline is empty or torn
        if not line:
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict):
            yield record


def read_log(log_dir: Path) -> Iterator[dict[str, Any]]:
    """Every record of the log, segment by segment, oldest segment first."""
    for path in segment_files(log_dir):
        yield from read_segment(path)
