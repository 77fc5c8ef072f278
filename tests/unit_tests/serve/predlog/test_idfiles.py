"""Id files: written with the segment, sorted at rotation, and found by request id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from src.serve.predlog.idfiles import ENTRY, find_logged, id_key, ids_name, open_ids_name
from src.serve.predlog.records import model_description_path, segment_dir
from src.serve.predlog.segments import SegmentWriter


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    path = model_description_path(tmp_path, "m", "v1")
    path.parent.mkdir(parents=True)
    path.write_bytes(orjson.dumps({"task": "classification"}))
    return tmp_path


def writer(log_dir: Path) -> SegmentWriter:
    return SegmentWriter(log_dir, segment_bytes=1 << 20, segment_seconds=3600, max_bytes=1 << 30)


def line(request_id: str, prediction: str = "x") -> bytes:
    record = {"request_id": request_id, "model_name": "m", "model_version": "v1",
              "prediction": prediction}  # fmt: skip
    return orjson.dumps(record) + b"\n"


def entries(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), dtype=ENTRY)


def test_the_open_id_file_follows_the_flushed_lines_and_the_rotated_one_is_sorted(
    log_dir: Path,
) -> None:
    w = writer(log_dir)
    ids = [f"req-{i}" for i in range(50)]
    name = w.append_many([line(i) for i in ids], ids)[0]
    assert name is not None
    directory = segment_dir(log_dir)
    assert not (directory / open_ids_name(name)).exists()  # nothing before the flush
    w.flush()
    written = entries(directory / open_ids_name(name))
    assert [int(k) for k in written["key"]] == [id_key(i) for i in ids]  # in write order
    w.append(line("late"), "late")
    w.rotate()
    assert not (directory / open_ids_name(name)).exists()
    rotated = entries(directory / ids_name(name))
    assert len(rotated) == 51
    assert list(rotated["key"]) == sorted(rotated["key"])
    data = (directory / name).read_bytes()
    for key, offset in rotated:
        request_id = orjson.loads(data[offset : data.index(b"\n", offset)])["request_id"]
        assert id_key(request_id) == key


def test_found_in_rotated_and_open_segments_oldest_first(log_dir: Path) -> None:
    w = writer(log_dir)
    w.append_many([line("a", "first"), line("b")], ["a", "b"])
    w.rotate()
    w.append_many([line("a", "second"), line("c")], ["a", "c"])
    w.flush()
    found = find_logged(log_dir, ["a", "c", "nope"])
    assert set(found) == {"a", "c"}
    assert found["a"].prediction == "first"
    assert (found["c"].model, found["c"].version, found["c"].task) == ("m", "v1", "classification")
    assert found["c"].segment == w.current


def test_a_key_is_confirmed_by_the_line(log_dir: Path) -> None:
    w = writer(log_dir)
    name = w.append(line("b"), "b")
    w.flush()
    assert name is not None
    # An entry claiming id "a"'s key for "b"'s line (what a hash collision looks like).
    path = segment_dir(log_dir) / open_ids_name(name)
    fake = np.array([(id_key("a"), 0)], dtype=ENTRY)
    path.write_bytes(path.read_bytes() + fake.tobytes())
    assert find_logged(log_dir, ["a"]) == {}
    assert set(find_logged(log_dir, ["b"])) == {"b"}


def test_a_torn_entry_and_a_torn_line_are_skipped(log_dir: Path) -> None:
    w = writer(log_dir)
    w.append(line("whole"), "whole")
    w.flush()
    directory = segment_dir(log_dir)
    (segment,) = directory.glob("*.jsonl.open")
    offset = segment.stat().st_size
    with segment.open("ab") as handle:
        handle.write(line("torn")[:-5])  # a worker killed mid-line
    entry = np.array([(id_key("torn"), offset)], dtype=ENTRY).tobytes()
    with (directory / open_ids_name(segment.name)).open("ab") as handle:
        handle.write(entry + entry[:7])  # and mid-entry
    assert set(find_logged(log_dir, ["whole", "torn"])) == {"whole"}
