"""Monitoring in the real multi-worker service (prometheus_client multiprocess mode).

``python -m src.serve.app`` with WORKERS=2: each worker keeps its own window; /metrics
aggregates the drift gauges with max over live workers and sums the counters. In-distribution
traffic flags nothing; traffic with petal_length shifted by +3 std flags that feature only.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.artifact_factory import IRIS_FEATURES, build_iris_artifact
from tests.polling import wait_for
from tests.server_process import ServerPool
from tests.unit_tests.serve.monitoring.helpers import iris_traffic, row_dicts

pytestmark = pytest.mark.integration

API_KEY = "integration-api-key-0123"  # pragma: allowlist secret
AUTH = {"Authorization": f"Bearer {API_KEY}"}
WAIT_SECONDS = 20.0


def samples(http: httpx.Client, name: str) -> dict[str, float]:
    """Values of the series ``name`` in /metrics, keyed by their ``feature`` label."""
    text = http.get("/metrics").text
    return {
        s.labels.get("feature", ""): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def statuses(http: httpx.Client) -> dict[str, float]:
    return samples(http, "model_feature_drift_status")


def rows_total(http: httpx.Client) -> float:
    return sum(samples(http, "model_monitoring_rows_total").values())


def send(http: httpx.Client, n: int, seed: int, shift: dict[str, float] | None = None) -> None:
    rows = row_dicts(iris_traffic(n, seed=seed, shift=shift)[0])
    for start in range(0, n, 100):
        body = {"records": rows[start : start + 100]}
        assert http.post("/predict/batch", json=body, headers=AUTH).status_code == 200


def test_drift_across_two_workers(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    build_iris_artifact(artifacts)
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    pool = ServerPool(
        tmp_path,
        API_KEYS=API_KEY,
        ALLOW_UNSIGNED="true",
        WORKERS="2",
        MODEL_POLL_SECONDS="0",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        MONITORING_WINDOW="1000",
        MONITORING_MIN_SAMPLES="300",
        MONITORING_CACHE_SECONDS="0",
        MONITORING_REFRESH_SECONDS="0.3",
    )
    with pool:
        server = pool(artifacts)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            wait_for(lambda: http.get("/health").status_code == 200, WAIT_SECONDS, "ready")
            send(http, 4000, seed=61)
            # every worker's rows, summed
            wait_for(lambda: rows_total(http) == 4000, WAIT_SECONDS, "4000 rows counted")
            assert set(statuses(http)) == set(IRIS_FEATURES)
            # Each worker judges its own share of the traffic (how the kernel spreads
            # connections varies), so only "nothing drifted" is certain here; the strict
            # PSI < 0.1 check is the single-process test's (tests/unit_tests/.../test_app_*).
            assert max(statuses(http).values()) < 2
            assert max(samples(http, "model_feature_drift_psi").values()) < 0.25

            send(http, 4000, seed=62, shift={"petal_length": 3.0})
            wait_for(lambda: rows_total(http) == 8000, WAIT_SECONDS, "8000 rows counted")
            flagged = {name for name, value in statuses(http).items() if value == 2}
            assert flagged == {"petal_length"}
            body = http.get("/monitoring", headers=AUTH).json()  # one worker's own window
            assert body["drifted_features"] == ["petal_length"]
        assert server.terminate() == 0
