"""The data-plane step and its writer, in one process, with a real tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from src.serve.artifact import resolve
from src.serve.backends.base import Prediction
from src.serve.loaded_model import build_loaded_model
from src.serve.predlog.idfiles import find_logged
from src.serve.predlog.index import FeedbackItem
from src.serve.predlog.records import model_description_path, read_log, segment_dir
from src.serve.predlog.service import ENCODE_CHUNK, PredictionLog, PredictionLogConfig
from tests.artifact_factory import build_iris_artifact
from tests.unit_tests.serve.helpers import make_settings

ROW = (5.1, 3.5, 1.4, 0.2)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("artifacts")
    build_iris_artifact(root)
    settings = make_settings(root)
    return build_loaded_model(resolve(root, "iris_classifier"), settings)


def config(tmp_path: Path, **overrides) -> PredictionLogConfig:
    values = {
        "directory": tmp_path / "log", "sample_rate": 1.0, "keep_features": True,
        "segment_bytes": 1 << 20, "segment_seconds": 3600.0, "max_bytes": 1 << 24,
        "queue_size": 100, "pending_seconds": 60.0, "window": 1000, "min_labelled": 1,
        "margin": 0.05,
    }  # fmt: skip
    return PredictionLogConfig(**{**values, **overrides})


def answer(label: str) -> Prediction:
    return Prediction(label, {"setosa": 1.0, "versicolor": 0.0, "virginica": 0.0})


def test_close_writes_every_queued_record_and_describes_the_version(tmp_path, model) -> None:
    log = PredictionLog(config(tmp_path), CollectorRegistry())
    log.start()
    log.record(model, "one", [ROW], [answer("setosa")], 0.0012, batch=False)
    log.record(
        model, "many", [ROW, ROW], [answer("setosa"), answer("virginica")], 0.002, batch=True
    )
    log.close()
    records = list(read_log(tmp_path / "log"))
    assert [r["request_id"] for r in records] == ["one", "many/0", "many/1"]
    first = records[0]
    assert first["features"] == dict(zip(model.metadata.feature_names, ROW, strict=True))
    assert first["prediction"] == "setosa"
    assert first["latency_ms"] == 1.2
    assert (first["model_name"], first["model_version"]) == (model.name, model.version)
    assert model_description_path(tmp_path / "log", model.name, model.version).is_file()


def test_a_drain_longer_than_one_encoding_chunk_keeps_every_record_in_order(
    tmp_path, model
) -> None:
    log = PredictionLog(config(tmp_path, queue_size=10_000), None)  # drained at close
    singles = [f"r{i}" for i in range(ENCODE_CHUNK * 2 + 5)]
    for request_id in singles[:-3]:
        log.record(model, request_id, [ROW], [answer("setosa")], 0.001, batch=False)
    rows = ENCODE_CHUNK + 7  # one batch that alone spans two chunks
    log.record(model, "big", [ROW] * rows, [answer("virginica")] * rows, 0.01, batch=True)
    for request_id in singles[-3:]:
        log.record(model, request_id, [ROW], [answer("setosa")], 0.001, batch=False)
    log.start()
    log.close()
    expected = [*singles[:-3], *(f"big/{i}" for i in range(rows)), *singles[-3:]]
    assert [r["request_id"] for r in read_log(tmp_path / "log")] == expected
    found = find_logged(tmp_path / "log", [singles[ENCODE_CHUNK + 1], f"big/{rows - 1}"])
    assert found[singles[ENCODE_CHUNK + 1]].prediction == "setosa"
    assert found[f"big/{rows - 1}"].prediction == "virginica"


def test_a_log_directory_the_writer_cannot_use_stops_the_start(tmp_path, model) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    segment_dir(log_dir).write_text("a file where the segments' directory belongs")
    log = PredictionLog(config(tmp_path), None)
    with pytest.raises(FileExistsError, match="segments"):
        log.start()  # at start-up, not later in a writer thread that would die unseen
    log.record(model, "r1", [ROW], [answer("setosa")], 0.001, batch=False)
    log.close()  # nothing started: closing is still safe


def test_feature_values_can_be_left_out(tmp_path, model) -> None:
    log = PredictionLog(config(tmp_path, keep_features=False), None)
    log.start()
    log.record(model, "one", [ROW], [answer("setosa")], 0.001, batch=False)
    log.close()
    (record,) = read_log(tmp_path / "log")
    assert "features" not in record


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path, model) -> None:
    log = PredictionLog(config(tmp_path, queue_size=2), None)  # not started: nothing drains
    for i in range(5):
        log.record(model, f"r{i}", [ROW], [answer("setosa")], 0.001, batch=False)
    assert log.dropped_queue_full == 3


def test_sampling_keeps_about_the_rate(tmp_path, model) -> None:
    log = PredictionLog(config(tmp_path, sample_rate=0.25, queue_size=10_000), None)
    for i in range(4000):
        log.record(model, f"r{i}", [ROW], [answer("setosa")], 0.001, batch=False)
    assert 800 < len(log._queue) < 1200


def test_live_quality_next_to_training(tmp_path, model) -> None:
    log = PredictionLog(config(tmp_path), CollectorRegistry())
    log.start()
    try:
        log.record(model, "a", [ROW], [answer("setosa")], 0.001, batch=False)
        log.record(model, "b", [ROW], [answer("setosa")], 0.001, batch=False)
        outcome = log.feedback([FeedbackItem("a", "label", "setosa"),
                                FeedbackItem("b", "label", "virginica")])  # fmt: skip
        assert sorted(outcome.matched + outcome.unmatched) == ["a", "b"]  # writer may be first
        log.close()  # drains: the predictions are indexed and joined
        log.start()
        (entry,) = log.live_quality(model)
    finally:
        log.close()
    assert entry["labelled_total"] == 2
    assert entry["live"] == {"accuracy": 0.5, "f1_macro": pytest.approx(1 / 3, abs=1e-6)}
    assert entry["training"] == model.metadata.metrics["test"]
    assert entry["status"] == "degraded"


def test_a_scrape_publishes_feedback_another_worker_just_stored(tmp_path, model) -> None:
    registry = CollectorRegistry()
    first = PredictionLog(config(tmp_path), registry)
    second = PredictionLog(config(tmp_path), None)  # another worker on the same log
    first.start()
    second.start()
    try:
        first.record(model, "a", [ROW], [answer("setosa")], 0.001, batch=False)
        first.record(model, "b", [ROW], [answer("setosa")], 0.001, batch=False)
        first.close()  # drained: both predictions are in the log
        first.start()
        second.feedback([FeedbackItem("a", "label", "setosa")])
        first.live_quality(model)  # /monitoring fills the cache with one labelled prediction
        second.feedback([FeedbackItem("b", "label", "virginica")])
        first.refresh_metrics()  # the scrape right after: the cache must not answer it
    finally:
        first.close()
        second.close()
    labels = {"model": model.name, "version": model.version}
    assert registry.get_sample_value("model_live_labelled_total", labels) == 2
    accuracy = registry.get_sample_value("model_live_metric", {**labels, "metric": "accuracy"})
    assert accuracy == 0.5
