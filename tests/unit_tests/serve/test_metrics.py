"""/metrics contents after known traffic: exact increments and bounded labels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from src.serve.app import create_app
from src.serve.metrics import reap_dead_workers
from src.serve.version import API_VERSION
from tests.artifact_factory import BuiltArtifact
from tests.unit_tests.serve.helpers import AUTH, IRIS_ROW, AppClient, make_settings, metric_value

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]
VIRGINICA = {"sepal_length": 7.7, "sepal_width": 3.0, "petal_length": 6.1, "petal_width": 2.3}


def _requests(text: str, route: str, method: str, status: str) -> float:
    return metric_value(
        text, "serve_http_requests_total", {"route": route, "method": method, "status": status}
    )


def test_counts_after_known_traffic(client: AppClient, iris: BuiltArtifact) -> None:
    before = client.get("/metrics").text
    for _ in range(3):
        client.post("/predict", json=IRIS_ROW, headers=AUTH)
    client.post("/predict", json=VIRGINICA, headers=AUTH)
    client.post("/predict/batch", json={"records": [IRIS_ROW, VIRGINICA, VIRGINICA]}, headers=AUTH)
    client.post("/predict", json={}, headers=AUTH)
    client.post("/predict", json=IRIS_ROW)
    client.get("/health")
    for path in ("/nope", "/admin/../secret", "/x" * 50):
        client.get(path)
    text = client.get("/metrics").text

    assert _requests(before, "/predict", "POST", "200") == 0
    assert _requests(text, "/predict", "POST", "200") == 4
    assert _requests(text, "/predict", "POST", "422") == 1
    assert _requests(text, "/predict", "POST", "401") == 1
    assert _requests(text, "/predict/batch", "POST", "200") == 1
    assert _requests(text, "/health", "GET", "200") == 1
    assert _requests(text, "/metrics", "GET", "200") == 1  # the first scrape
    assert _requests(text, "<unmatched>", "GET", "404") == 3  # unknown paths share one label
    assert "/x/x" not in text
    assert "secret" not in text

    assert (
        metric_value(text, "serve_http_request_duration_seconds_count", {"route": "/predict"}) == 6
    )
    version = iris.model_version
    by_class = {
        cls: metric_value(
            text,
            "serve_predictions_total",
            {"model_name": "iris_classifier", "model_version": version, "predicted_class": cls},
        )
        for cls in ("setosa", "versicolor", "virginica")
    }
    # The warm-up prediction is not counted: only rows answered to clients.
    assert by_class == {"setosa": 4, "versicolor": 0, "virginica": 3}


def test_model_and_build_info(client: AppClient, iris: BuiltArtifact) -> None:
    text = client.get("/metrics").text
    labels = {
        "model_name": "iris_classifier",
        "model_version": iris.model_version,
        "backend": "sklearn",
    }
    assert metric_value(text, "serve_model_info", labels) == 1
    assert metric_value(text, "serve_model_ready") == 1
    assert metric_value(text, "serve_model_loads_total", {"model_name": "iris_classifier"}) == 1
    assert (
        metric_value(
            text, "serve_model_loaded_timestamp_seconds", {"model_name": "iris_classifier"}
        )
        > 1.7e9
    )
    assert (
        metric_value(text, "serve_model_load_duration_seconds", {"model_name": "iris_classifier"})
        > 0
    )
    assert metric_value(text, "serve_build_info", {"api_version": API_VERSION}) == 1
    assert "serve_http_requests_in_progress" in text
    assert "process_resident_memory_bytes" in text
    assert "_created" not in text


def test_metrics_content_type(client: AppClient) -> None:
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")


def test_dead_workers_live_gauges_are_reaped(tmp_path: Path) -> None:
    tmp_path = tmp_path / "multiproc"
    tmp_path.mkdir()
    dead_pid = 2**22 + 12345  # above the default pid_max: never a live process
    (tmp_path / f"gauge_livesum_{dead_pid}.db").write_bytes(b"")
    (tmp_path / f"gauge_livemax_{dead_pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{dead_pid}.db").write_bytes(b"")  # counters stay: they are totals
    (tmp_path / f"gauge_livesum_{os.getpid()}.db").write_bytes(b"")
    assert reap_dead_workers(str(tmp_path)) == [dead_pid]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{dead_pid}.db", f"gauge_livesum_{os.getpid()}.db"]
    )


def test_rejected_bodies_are_counted_under_their_route(
    artifacts: Path, iris: BuiltArtifact
) -> None:
    with AppClient(create_app(make_settings(artifacts, max_body_bytes=50))) as client:
        big = b'{"pad": "' + b"x" * 100 + b'"}'
        json_headers = {**AUTH, "Content-Type": "application/json"}
        assert client.post("/predict", content=big, headers=json_headers).status_code == 413

        async def chunked() -> object:
            for _ in range(10):
                yield b" " * 20

        assert client.post("/predict", content=chunked(), headers=json_headers).status_code == 413
        text = client.get("/metrics").text
    assert _requests(text, "/predict", "POST", "413") == 2
    assert _requests(text, "<unmatched>", "POST", "413") == 0


def test_docs_routes_have_their_own_labels(client: AppClient) -> None:
    client.get("/openapi.json")
    client.get("/docs")
    text = client.get("/metrics").text
    assert _requests(text, "/openapi.json", "GET", "200") == 1
    assert _requests(text, "/docs", "GET", "200") == 1
    assert _requests(text, "<unmatched>", "GET", "200") == 0
