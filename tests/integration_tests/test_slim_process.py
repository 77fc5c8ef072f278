"""The slim service on a real process: with ``ALLOW_PICKLE=false`` and an ONNX model, the
service never imports scikit-learn, SciPy, pandas or joblib (the slim image does not install
them).

The server runs through ``slim_import_runner`` (tests/server_process.py starts it), which refuses
those imports as an uninstalled package would and logs every attempt. The test serves what a
client of the slim image uses (health, prediction, batch, the Open Inference Protocol, model
metadata, metrics, drift monitoring over enough rows for a verdict, the prediction log, the
OpenAPI page), stops the process with SIGTERM and reads the log: no attempt, and the finder was
installed in the server and in each of its workers.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.artifact_factory import IRIS_FEATURES, build_iris_artifact
from tests.server_process import ServerPool, ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

API_KEY = "fake-slim-api-key-0123456"  # pragma: allowlist secret
KEY = ("fake-slim-key", b"fake-slim-signing-secret")  # pragma: allowlist secret
AUTH = {"Authorization": f"Bearer {API_KEY}"}
RUNNER = (sys.executable, "-m", "tests.integration_tests.slim_import_runner")
SETOSA = dict(zip(IRIS_FEATURES, [5.1, 3.5, 1.4, 0.2], strict=True))
MIN_SAMPLES = 50


@pytest.fixture
def blocked_log(tmp_path: Path) -> Path:
    return tmp_path / "blocked-imports.log"


@pytest.fixture
def start_server(tmp_path: Path, blocked_log: Path) -> Iterator[ServerPool]:
    with ServerPool(
        tmp_path,
        command=RUNNER,
        ALLOW_PICKLE="false",
        API_KEYS=API_KEY,
        ARTIFACT_SIGNING_KEYS=f"{KEY[0]}:{KEY[1].decode()}",
        BLOCKED_IMPORTS_LOG=str(blocked_log),
        MONITORING_MIN_SAMPLES=str(MIN_SAMPLES),
        MONITORING_CACHE_SECONDS="0",
        PREDICTION_LOG_ENABLED="true",
        PREDICTION_LOG_DIR=str(tmp_path / "prediction-log"),
    ) as pool:
        yield pool


def blocked_attempts(log: Path) -> list[str]:
    """The logged import attempts (each with its stack), empty when none."""
    text = log.read_text() if log.exists() else ""
    return [block for block in text.split("\n\n") if block.strip().startswith("blocked")]


def installed_pids(log: Path) -> set[int]:
    return {
        int(line.split()[1])
        for line in log.read_text().splitlines()
        if line.startswith("installed")
    }


def use_every_route(server: ServerProcess) -> None:
    """What a client of the slim image calls, each answered with success."""
    url = server.url
    health = httpx.get(url + "/health", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["backend"] == "onnx"
    for path in ("/health/live", "/v2/health/ready", "/model", "/openapi.json", "/docs"):
        assert httpx.get(url + path, headers=AUTH, timeout=10).status_code == 200, path
    with httpx.Client(base_url=url, headers=AUTH, timeout=10) as client:
        for _ in range(MIN_SAMPLES):
            answer = client.post("/predict", json=SETOSA)
            assert answer.status_code == 200, answer.text
            assert answer.json()["prediction"] == "setosa"
        batch = client.post("/predict/batch", json={"records": [SETOSA, SETOSA]})
        assert batch.status_code == 200, batch.text
        infer = client.post(
            "/v2/models/iris_classifier/infer",
            json={
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 4],
                        "datatype": "FP64",
                        "data": [5.1, 3.5, 1.4, 0.2],
                    }
                ]
            },
        )
        assert infer.status_code == 200, infer.text
        monitoring = client.get("/monitoring")
        assert monitoring.status_code == 200, monitoring.text
        # enough rows for a verdict: the drift statistics were computed
        assert monitoring.json()["status"] in {"ok", "warn", "drift"}, monitoring.text
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "model_feature_drift" in metrics.text


@pytest.mark.parametrize("workers", ["1", "2"])
def test_onnx_only_service_never_imports_sklearn_scipy_or_pandas(
    tmp_path: Path, start_server: ServerPool, blocked_log: Path, workers: str
) -> None:
    artifacts = tmp_path / "artifacts"
    build_iris_artifact(artifacts, with_onnx=True, signing_key=KEY)
    server = start_server(artifacts, WORKERS=workers)
    worker_pids = {p.pid for p in server.workers()}
    if workers == "2":
        # one connection per request: each worker gets some (checked below via the log)
        for _ in range(4):
            use_every_route(server)
    else:
        use_every_route(server)
    assert server.terminate() == 0, server.log_tail()

    attempts = blocked_attempts(blocked_log)
    assert not attempts, "the slim service imported:\n" + "\n".join(attempts[:3])
    assert "loaded before the finder" not in blocked_log.read_text()
    # the finder ran in the server and in every worker (else the check above proves nothing)
    assert {server.pid} | worker_pids <= installed_pids(blocked_log)
    assert len(worker_pids) == (0 if workers == "1" else 2)


def test_a_pickle_only_model_is_refused_without_importing_sklearn(
    tmp_path: Path, start_server: ServerPool, blocked_log: Path
) -> None:
    """No model.onnx and ALLOW_PICKLE=false: the model is refused with the reason, and the
    scikit-learn backend is not even imported."""
    artifacts = tmp_path / "artifacts"
    build_iris_artifact(artifacts, with_onnx=False, signing_key=KEY)
    server = start_server(artifacts)
    health = httpx.get(server.url + "/health", timeout=10)
    assert health.status_code == 503
    assert "ALLOW_PICKLE=false forbids the scikit-learn fallback" in health.json()["reason"]
    answer = httpx.post(server.url + "/predict", json=SETOSA, headers=AUTH, timeout=10)
    assert answer.status_code == 503
    assert server.terminate() == 0, server.log_tail()
    assert not blocked_attempts(blocked_log), blocked_log.read_text()[:3000]
