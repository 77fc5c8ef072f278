"""The feedback rules, in the shared index (two connections stand for two workers), with
predictions logged in real segments and id files."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from src.serve.predlog.idfiles import LoggedPrediction
from src.serve.predlog.index import INDEX_FILE, FeedbackIndex, FeedbackItem
from src.serve.predlog.records import model_description_path, segment_dir
from src.serve.predlog.segments import SegmentWriter

TASKS = {"iris": "classification", "reg": "regression"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Writer:
    """One worker's writer: appends records to its segment, then joins waiting feedback."""

    def __init__(self, log_dir: Path, index: FeedbackIndex) -> None:
        self.index = index
        self.segments = SegmentWriter(
            log_dir, segment_bytes=1 << 20, segment_seconds=3600, max_bytes=1 << 30
        )
        for model, task in TASKS.items():
            path = model_description_path(log_dir, model, "v1")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(orjson.dumps({"task": task}))

    def add_predictions(self, rows: list[tuple[str, object, str]]) -> int:
        logged = []
        for pid, prediction, model in rows:
            record = {"request_id": pid, "model_name": model, "model_version": "v1",
                      "prediction": prediction}  # fmt: skip
            segment = self.segments.append(orjson.dumps(record) + b"\n", pid)
            assert segment is not None
            logged.append(LoggedPrediction(pid, model, "v1", TASKS[model], prediction, segment))
        self.segments.flush()
        return self.index.join_logged(lambda: logged)

    def __getattr__(self, name: str):
        return getattr(self.index, name)


def row(pid: str, prediction: object, model: str = "iris") -> tuple[str, object, str]:
    return (pid, prediction, model)


def label(pid: str, value: object) -> FeedbackItem:
    return FeedbackItem(pid, "label", value)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def workers(tmp_path: Path, clock: Clock):
    a, b = FeedbackIndex(tmp_path, clock=clock), FeedbackIndex(tmp_path, clock=clock)
    yield Writer(tmp_path, a), b
    a.close()
    b.close()


def window(index: FeedbackIndex, size: int = 1000):
    (only,) = index.windows(size)
    return only


def test_in_order_before_twice_and_unknown(workers) -> None:
    writer, requests = workers
    writer.add_predictions([row("a", "setosa"), row("b", "virginica")])
    # in order, twice within a request, for an unknown id, and before its prediction
    outcome = requests.add_feedback(
        [label("a", "setosa"), label("a", "virginica"), label("zz", "setosa"), label("c", 1)]
    )
    assert outcome.matched == ["a"]
    assert outcome.duplicates == ["a"]
    assert outcome.unmatched == ["zz", "c"]
    assert writer.add_predictions([row("c", 1)]) == 1  # joined when the prediction arrives
    again = requests.add_feedback([label("a", "virginica"), label("c", 2)])
    assert again.duplicates == ["a", "c"]  # the first label wins
    assert again.matched == []
    w = window(writer)
    assert w.labelled_total == 2
    assert sorted(zip(w.predictions, w.truths, strict=True)) == [("1", "1"), ("setosa", "setosa")]


def test_a_value_for_a_classifier_is_rejected_and_not_counted(workers) -> None:
    writer, requests = workers
    writer.add_predictions([row("a", "setosa"), row("r", 3.5, "reg")])
    outcome = requests.add_feedback([FeedbackItem("a", "value", 1.0), label("r", "x")])
    assert [r["request_id"] for r in outcome.rejected] == ["a", "r"]
    assert outcome.matched == []
    assert outcome.unmatched == []
    assert requests.windows(10) == []


def test_regression_values_are_joined_as_numbers(workers) -> None:
    writer, requests = workers
    writer.add_predictions([row("r", 3.5, "reg")])
    assert requests.add_feedback([FeedbackItem("r", "value", 4)]).matched == ["r"]
    w = window(requests)
    assert (w.task, w.predictions, w.truths) == ("regression", [3.5], [4.0])


def test_feedback_after_the_segment_is_deleted_stays_unmatched(workers, tmp_path) -> None:
    writer, requests = workers
    writer.add_predictions([row("old", "setosa")])
    old_segment = writer.segments.current
    writer.segments.rotate()
    writer.add_predictions([row("new", "setosa")])
    assert requests.add_feedback([label("old", "setosa")]).matched == ["old"]
    writer.segments.max_bytes = writer.segments.segment_bytes  # room for the open one only
    deleted = writer.segments.enforce_bound(reserve_own=False)
    assert deleted == [old_segment]
    stem = old_segment.removesuffix(".jsonl")
    assert not [p for p in segment_dir(tmp_path).iterdir() if p.name.startswith(stem)]
    writer.prune_segments(deleted)
    outcome = requests.add_feedback([label("old", "virginica"), label("new", "setosa")])
    assert outcome.unmatched == ["old"]
    assert outcome.matched == ["new"]
    assert window(requests).labelled_total == 2  # "old" still counted once


def test_pending_feedback_expires(workers, clock) -> None:
    writer, requests = workers
    requests.add_feedback([label("late", "setosa")])
    clock.now += 61
    assert writer.expire_pending(60) == 1
    assert writer.add_predictions([row("late", "setosa")]) == 0


def test_the_window_keeps_the_newest_and_the_total_counts_all(workers) -> None:
    writer, requests = workers
    writer.add_predictions([row(f"p{i}", "setosa") for i in range(10)])
    for i in range(10):
        requests.add_feedback([label(f"p{i}", "setosa" if i >= 7 else "virginica")])
    newest = window(requests, 3)
    assert newest.labelled_total == 10
    assert newest.truths == ["setosa"] * 3
    writer.trim_windows(3)
    assert len(window(requests).truths) == 3


def test_joined_truths_for_the_export(workers) -> None:
    writer, requests = workers
    writer.add_predictions([row("a", "setosa"), row("b", "setosa")])
    requests.add_feedback([label("a", "virginica"), label("x", "setosa")])
    assert requests.joined_truths(["a", "b", "x"]) == {"a": "virginica"}


def test_the_first_prediction_with_an_id_is_the_one_joined(workers) -> None:
    writer, requests = workers
    writer.add_predictions([row("same", "setosa")])
    writer.segments.rotate()  # the first one now in a rotated, sorted id file
    writer.add_predictions([row("same", "virginica")])
    assert requests.add_feedback([label("same", "virginica")]).matched == ["same"]
    assert window(requests).predictions == ["setosa"]


def test_many_ids_found_in_rotated_and_open_segments(workers) -> None:
    writer, requests = workers
    writer.add_predictions([row(f"id-{i}", "setosa") for i in range(500)])
    writer.segments.rotate()
    writer.add_predictions([row(f"id-{i}", "virginica") for i in range(500, 800)])
    ids = [f"id-{i}" for i in range(0, 800, 7)] + ["id-800"]
    outcome = requests.add_feedback([label(i, "setosa") for i in ids])
    assert outcome.matched == ids[:-1]
    assert outcome.unmatched == ["id-800"]
    assert window(requests).labelled_total == len(ids) - 1


def test_an_index_of_the_older_layout_is_migrated(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "index.sqlite3")
    db.executescript(
        "CREATE TABLE predictions (id TEXT PRIMARY KEY, segment TEXT) WITHOUT ROWID;"
        "CREATE TABLE feedback (id TEXT PRIMARY KEY, kind TEXT NOT NULL, truth, "
        "received_at REAL NOT NULL, state INTEGER NOT NULL) WITHOUT ROWID;"
        "INSERT INTO feedback VALUES ('kept', 'label', 'setosa', 1.0, 1);"
    )
    db.close()
    index = FeedbackIndex(tmp_path)
    try:
        assert index.joined_truths(["kept"]) == {"kept": "setosa"}
        assert index.add_feedback([label("kept", "virginica")]).duplicates == ["kept"]
    finally:
        index.close()
    tables = sqlite3.connect(tmp_path / "index.sqlite3").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
    )
    assert "predictions" not in {name for (name,) in tables}


def _open_each_new_index_with_two_connections(
    directories: list[Path], barrier: Any, errors_file: Path
) -> None:
    """One worker's start-up, once per directory: its two connections (requests, writer)
    open the index at the moment the other worker does."""
    errors: list[str] = []

    def open_and_close(directory: Path) -> None:
        try:
            FeedbackIndex(directory).close()
        except Exception as exc:  # every failure is what the test reports
            errors.append(f"{directory.name}: {exc!r}")

    for directory in directories:
        barrier.wait(timeout=60)
        threads = [threading.Thread(target=open_and_close, args=(directory,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    errors_file.write_text("\n".join(errors))


def test_workers_opening_a_new_index_at_the_same_moment_all_start(tmp_path: Path) -> None:
    directories = [tmp_path / f"log-{n}" for n in range(30)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    errors = [tmp_path / "errors-a.txt", tmp_path / "errors-b.txt"]
    workers = [
        context.Process(
            target=_open_each_new_index_with_two_connections, args=(directories, barrier, path)
        )
        for path in errors
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert [path.read_text() for path in errors] == ["", ""]
    for directory in directories:  # each one ready for every worker: WAL, with its tables
        db = sqlite3.connect(directory / INDEX_FILE)
        try:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
            assert {"feedback", "labelled", "labelled_counts"} <= tables
        finally:
            db.close()
