"""POST /feedback in the app: auth, input errors, the 404 without the log, and the live
figures it feeds into /metrics and GET /monitoring."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.serve.app import create_app
from src.serve.settings import SettingsError, load_settings
from tests.polling import wait_for
from tests.unit_tests.serve.helpers import (
    AUTH,
    AppClient,
    assert_error,
    make_settings,
    metric_value,
)

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.fixture
def logging_client(clean_env, artifacts: Path, iris, tmp_path: Path):
    settings = make_settings(
        artifacts, prediction_log_enabled=True, prediction_log_dir=tmp_path / "log",
        live_quality_min_labelled=1, max_batch_rows=3,
    )  # fmt: skip
    with AppClient(create_app(settings)) as running:
        yield running


def test_without_the_log_feedback_is_404(client) -> None:
    response = client.post("/feedback", json={"request_id": "a", "label": "setosa"}, headers=AUTH)
    assert_error(response, 404, "not_found")


def test_feedback_needs_a_key(logging_client) -> None:
    response = logging_client.post("/feedback", json={"request_id": "a", "label": "setosa"})
    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"request_id": "a"}, "exactly one of 'label'"),
        ({"request_id": "a", "label": "x", "value": 1.0}, "exactly one of 'label'"),
        ({"request_id": "bad id!", "label": "x"}, "request_id"),
        ({"request_id": "a", "value": "NaN"}, "value"),
        ({"request_id": "a", "label": "x", "extra": 1}, "extra"),
        ({"items": []}, "items"),
    ],
)
def test_invalid_feedback_is_422_with_the_reason(logging_client, body, fragment) -> None:
    response = logging_client.post("/feedback", json=body, headers=AUTH)
    error = assert_error(response, 422, "invalid_input")
    assert fragment in error["error"]["message"]


def test_feedback_that_is_not_json_is_422_invalid_json(logging_client) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    response = logging_client.post("/feedback", content=b"\xff{not json", headers=headers)
    assert_error(response, 422, "invalid_json")


def test_a_null_label_is_refused(logging_client) -> None:
    response = logging_client.post(
        "/feedback", json={"request_id": "a", "label": None, "value": 1.0}, headers=AUTH
    )
    assert_error(response, 422, "invalid_input")


def test_more_items_than_max_batch_rows_is_413(logging_client) -> None:
    items = [{"request_id": f"r{i}", "label": "setosa"} for i in range(4)]
    response = logging_client.post("/feedback", json={"items": items}, headers=AUTH)
    assert_error(response, 413, "too_many_rows")


def test_feedback_feeds_live_metrics_and_monitoring(logging_client) -> None:
    for request_id in ("p1", "p2"):
        body = {"request_id": request_id, **ROW}
        assert logging_client.post("/predict", json=body, headers=AUTH).status_code == 200
    items = [{"request_id": "p1", "label": "setosa"}, {"request_id": "p2", "label": "versicolor"}]
    answer = logging_client.post("/feedback", json={"items": items}, headers=AUTH).json()
    assert sorted(answer["matched"] + answer["unmatched"]) == ["p1", "p2"]

    def labelled() -> float:
        text = logging_client.get("/metrics").text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("model_live_labelled_total{")
        )

    wait_for(lambda: labelled() == 2, 10, "two labelled predictions")
    text = logging_client.get("/metrics").text
    assert metric_value(text, "model_live_metric", {"metric": "accuracy"}) == 0.5
    quality = logging_client.get("/monitoring", headers=AUTH).json()["live_quality"]
    assert quality["live"]["accuracy"] == 0.5
    assert quality["training"]["accuracy"] > 0.9
    assert quality["status"] == "degraded"


def test_the_disk_bound_must_leave_room_for_every_worker(clean_env, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="PREDICTION_LOG_MAX_BYTES"):
        load_settings(
            auth_disabled=True, prediction_log_enabled=True, workers=4,
            prediction_log_segment_bytes=1 << 20, prediction_log_max_bytes=4 << 20,
        )  # fmt: skip
    load_settings(  # the same numbers are fine while the log is off
        auth_disabled=True, workers=4, prediction_log_segment_bytes=1 << 20,
        prediction_log_max_bytes=4 << 20,
    )  # fmt: skip


def test_open_inference_protocol_predictions_are_logged_too(logging_client) -> None:
    """Every adapter's answers reach the log: an OIP infer is joined by its request id."""
    body = {
        "inputs": [
            {"name": "input", "datatype": "FP64", "shape": [1, 4], "data": list(ROW.values())}
        ]
    }
    headers = {**AUTH, "X-Request-ID": "oip-1"}
    response = logging_client.post("/v2/models/iris_classifier/infer", json=body, headers=headers)
    assert response.status_code == 200, response.text

    def logged() -> bool:
        text = logging_client.get("/metrics").text
        return metric_value(text, "serve_prediction_log_records_total") >= 1

    wait_for(logged, 10, "the OIP prediction written to the log")
    item = {"request_id": "oip-1", "label": "setosa"}
    answer = logging_client.post("/feedback", json=item, headers=AUTH).json()
    assert answer["matched"] == ["oip-1"]
