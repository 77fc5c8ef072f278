"""The real service: ``python -m src.serve.app`` on a free 127.0.0.1 port, driven over HTTP."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.artifact_factory import build_iris_artifact, new_version, set_latest
from tests.polling import wait_for
from tests.server_process import ServerPool

pytestmark = pytest.mark.integration

API_KEY = "integration-api-key-0123"
ADMIN_KEY = "integration-admin-key-456"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
WAIT_SECONDS = 45.0


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        sample, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in sample for k, v in labels.items()):
            total += float(value)
    return total


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerPool]:
    with ServerPool(
        tmp_path,
        API_KEYS=API_KEY,
        ADMIN_API_KEYS=ADMIN_KEY,
        MODEL_POLL_SECONDS="0.3",
        # unsigned factory artifacts; signatures over the real process are tested in
        # test_hardening_processes.py
        ALLOW_UNSIGNED="true",
    ) as pool:
        yield pool


def test_starts_empty_becomes_ready_serves_and_stops_cleanly(
    tmp_path: Path, start_server: ServerPool
) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    server = start_server(artifacts, MAX_BODY_BYTES="4096", MAX_BATCH_ROWS="20")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        health = http.get("/health")
        assert health.status_code == 503
        assert "no model 'iris_classifier' is published yet" in health.json()["reason"]

        built = build_iris_artifact(artifacts)
        wait_for(lambda: http.get("/health").status_code == 200, WAIT_SECONDS, "ready")
        assert http.get("/health").json()["model_version"] == built.model_version

        for _ in range(5):
            r = http.post("/predict", json=ROW, headers=AUTH)
            assert r.status_code == 200
            assert r.json()["prediction"] == "setosa"
            assert r.headers["x-model-version"] == built.model_version
        batch = http.post("/predict/batch", json={"records": [ROW] * 20}, headers=AUTH)
        assert batch.status_code == 200
        assert len(batch.json()["predictions"]) == 20

        assert http.post("/predict", json=ROW).status_code == 401
        assert http.post("/predict", json=ROW, headers={"X-API-Key": "wrong"}).status_code == 403
        assert (
            http.post("/predict", json={**ROW, "petal_width": "x"}, headers=AUTH).status_code == 422
        )
        nan = orjson.dumps(ROW).replace(b"0.2", b"NaN")
        json_headers = {**AUTH, "Content-Type": "application/json"}
        assert http.post("/predict", content=nan, headers=json_headers).status_code == 422
        assert (
            http.post("/predict/batch", json={"records": [ROW] * 21}, headers=AUTH).status_code
            == 413
        )
        big = orjson.dumps({**ROW, "pad": "x" * 5000})
        assert http.post("/predict", content=big, headers=json_headers).status_code == 413

        def chunked() -> Iterator[bytes]:
            for _ in range(100):
                yield b" " * 100

        r = http.post("/predict", content=chunked(), headers=json_headers)
        assert r.status_code == 413
        text_body = {**AUTH, "Content-Type": "text/plain"}
        assert http.post("/predict", content=b"hi", headers=text_body).status_code == 415

        metrics = http.get("/metrics").text
        assert metric(metrics, "serve_http_requests_total", route="/predict", status="200") == 5
        assert metric(metrics, "serve_http_requests_total", route="/predict", status="413") == 2
        assert (
            metric(metrics, "serve_http_requests_total", route="/predict/batch", status="413") == 1
        )
        assert metric(metrics, "serve_predictions_total", predicted_class="setosa") == 25
        assert metric(metrics, "serve_auth_failures_total", reason="missing") == 1
        assert metric(metrics, "serve_auth_failures_total", reason="invalid") == 1
        assert metric(metrics, "serve_model_ready") == 1

    assert server.terminate() == 0
    logs = server.logs()
    assert API_KEY not in logs
    assert ADMIN_KEY not in logs
    assert '"route":"/predict","status":200' in logs.replace(" ", "")


def test_hot_reload_under_load_then_broken_version_refused(
    tmp_path: Path, start_server: ServerPool
) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    v1 = build_iris_artifact(artifacts, model_version=new_version(-60))
    server = start_server(artifacts)
    seen: list[tuple[int, str]] = []
    errors: list[str] = []
    stop = threading.Event()

    def client_loop() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            while not stop.is_set():
                try:
                    r = http.post("/predict", json=ROW, headers=AUTH)
                    seen.append((r.status_code, r.json().get("model_version", "")))
                except Exception as exc:  # any failure counts
                    errors.append(repr(exc))

    worker = threading.Thread(target=client_loop)
    worker.start()
    try:
        wait_for(lambda: len(seen) >= 20, WAIT_SECONDS, "traffic on v1")
        v2 = build_iris_artifact(artifacts, model_version=new_version(), C=0.05)
        wait_for(
            lambda: sum(1 for _, v in seen if v == v2.model_version) >= 20,
            WAIT_SECONDS,
            "traffic on v2",
        )
    finally:
        stop.set()
        worker.join(15)
    assert errors == []
    assert {status for status, _ in seen} == {200}
    versions = [v for _, v in seen]
    switch = versions.index(v2.model_version)
    assert set(versions[:switch]) == {v1.model_version}
    assert set(versions[switch:]) == {v2.model_version}  # one atomic switch, never back

    with httpx.Client(base_url=server.url, timeout=10) as http:
        # Corrupted before LATEST names it (else the poller could load the good bytes first).
        broken = build_iris_artifact(artifacts, model_version=new_version(5), set_latest=False)
        model_file = broken.directory / "model.joblib"
        model_file.write_bytes(model_file.read_bytes()[:-1] + b"\x00")
        set_latest(artifacts, broken.model_name, broken.model_version)
        wait_for(
            lambda: (
                metric(
                    http.get("/metrics").text,
                    "serve_model_reload_failures_total",
                    reason="artifact_integrity",
                )
                == 1
            ),
            WAIT_SECONDS,
            "broken version refused",
        )
        time.sleep(1.0)  # several poll intervals: not retried in a loop
        metrics = http.get("/metrics").text
        assert metric(metrics, "serve_model_reload_failures_total") == 1
        health = http.get("/health").json()
        assert health["model_version"] == v2.model_version
        r = http.post("/predict", json=ROW, headers=AUTH)
        assert r.status_code == 200
        assert r.json()["model_version"] == v2.model_version
        admin = http.post("/admin/reload", headers={"X-API-Key": ADMIN_KEY})
        assert admin.status_code == 409
        assert "sha256" in admin.json()["error"]["message"]
    assert server.terminate() == 0
    assert "refused, still serving" in server.logs()


def test_sigterm_finishes_the_in_flight_request_and_exits_0(
    tmp_path: Path, start_server: ServerPool
) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    build_iris_artifact(artifacts)
    server = start_server(artifacts)
    body = orjson.dumps({"records": [ROW] * 50})
    half = len(body) // 2
    started = threading.Event()
    result: dict[str, Any] = {}

    def slow_body() -> Iterator[bytes]:
        yield body[:half]
        started.set()
        time.sleep(4)  # SIGTERM arrives while the request is in flight
        yield body[half:]

    def send() -> None:
        try:
            result["response"] = httpx.post(
                server.url + "/predict/batch",
                content=slow_body(),
                headers={**AUTH, "Content-Type": "application/json"},
                timeout=60,
            )
        except Exception as exc:
            result["error"] = repr(exc)

    sender = threading.Thread(target=send)
    sender.start()
    assert started.wait(30)
    time.sleep(0.2)
    server.proc.send_signal(signal.SIGTERM)

    def refuses_connections() -> bool:
        try:
            httpx.get(server.url + "/health/live", timeout=1, headers={"Connection": "close"})
        except httpx.ConnectError:
            return True
        except httpx.HTTPError:
            return False
        return False

    # New connections are refused while the in-flight request is still uploading its body.
    wait_for(refuses_connections, timeout=3, what="listener closed")
    assert sender.is_alive()
    sender.join(60)
    assert "error" not in result, result.get("error")
    response = result["response"]
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 50
    assert server.proc.wait(60) == 0, server.logs()


def test_two_workers_aggregate_metrics_and_exit_cleanly(
    tmp_path: Path, start_server: ServerPool
) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    build_iris_artifact(artifacts)
    multiproc = tmp_path / "prometheus"  # given, so nothing outlives the test even on a crash
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"stale")  # wiped at start-up
    server = start_server(
        artifacts, WORKERS="2", MODEL_POLL_SECONDS="0", PROMETHEUS_MULTIPROC_DIR=str(multiproc)
    )
    wait_for(
        lambda: server.logs().count("model iris_classifier version") >= 2,
        WAIT_SECONDS,
        "both workers",
        detail=server.log_tail,
    )
    for _ in range(30):
        # A fresh connection each time so both workers get traffic.
        r = httpx.post(server.url + "/predict", json=ROW, headers={**AUTH, "Connection": "close"})
        assert r.status_code == 200
    for _ in range(6):
        text = httpx.get(server.url + "/metrics", headers={"Connection": "close"}).text
        assert metric(text, "serve_http_requests_total", route="/predict", status="200") == 30
        assert metric(text, "serve_predictions_total", predicted_class="setosa") == 30
    assert server.terminate() == 0
    logs = server.logs()
    assert '"logger":"uvicorn.access"' not in logs  # one log line per request: ours
    assert logs.count('"route":"/predict"') == 30  # each worker wrote its lines as it stopped


def test_access_log_is_written_in_blocks_and_sigterm_loses_no_line(
    tmp_path: Path, start_server: ServerPool
) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    build_iris_artifact(artifacts)
    server = start_server(artifacts, MODEL_POLL_SECONDS="0", ACCESS_LOG_FLUSH_SECONDS="0.5")

    def access_ids() -> list[str]:
        return [e["request_id"] for e in server.log_entries() if e.get("route") == "/predict"]

    with httpx.Client(base_url=server.url, headers=AUTH) as http:
        first = [f"early-{i}" for i in range(20)]
        for request_id in first:
            assert http.post("/predict", json={**ROW, "request_id": request_id}).status_code == 200
        # no shutdown, no other log line: the periodic flush writes them (what a hard kill
        # cannot lose)
        wait_for(lambda: access_ids() == first, 5, "the periodic flush", detail=server.log_tail)
        late = [f"late-{i}" for i in range(300)]
        for request_id in late:
            assert http.post("/predict", json={**ROW, "request_id": request_id}).status_code == 200
    assert server.terminate() == 0
    ids = access_ids()
    assert ids == first + late  # every line once, in order
    entries = server.log_entries()
    stopped = next(i for i, e in enumerate(entries) if e["message"] == "shutdown complete")
    assert all(e.get("route") != "/predict" for e in entries[stopped:])  # written before it
