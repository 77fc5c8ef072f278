"""The feedback rules, in the shared index (two connections stand for two workers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.serve.predlog.index import FeedbackIndex, FeedbackItem, PredictionRow


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def row(pid: str, prediction: object, segment: str = "s1", task: str = "classification"):
    return PredictionRow(pid, "iris", "v1", task, prediction, segment, 0.0)


def label(pid: str, value: object) -> FeedbackItem:
    return FeedbackItem(pid, "label", value)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def workers(tmp_path: Path, clock: Clock):
    a, b = FeedbackIndex(tmp_path, clock=clock), FeedbackIndex(tmp_path, clock=clock)
    yield a, b
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
    writer.add_predictions([row("a", "setosa"), row("r", 3.5, task="regression")])
    outcome = requests.add_feedback([FeedbackItem("a", "value", 1.0), label("r", "x")])
    assert [r["request_id"] for r in outcome.rejected] == ["a", "r"]
    assert outcome.matched == []
    assert outcome.unmatched == []
    assert requests.windows(10) == []


def test_regression_values_are_joined_as_numbers(workers) -> None:
    writer, requests = workers
    writer.add_predictions([row("r", 3.5, task="regression")])
    assert requests.add_feedback([FeedbackItem("r", "value", 4)]).matched == ["r"]
    w = window(requests)
    assert (w.task, w.predictions, w.truths) == ("regression", [3.5], [4.0])


def test_feedback_after_the_segment_is_deleted_stays_unmatched(workers) -> None:
    writer, requests = workers
    writer.add_predictions([row("old", "setosa", "s1"), row("new", "setosa", "s2")])
    assert requests.add_feedback([label("old", "setosa")]).matched == ["old"]
    writer.prune_segments(["s1"])
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
