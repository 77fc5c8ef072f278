"""Monitoring inside the real app: /monitoring and /metrics.

In-distribution traffic shows low drift everywhere; traffic with one feature shifted by +3
standard deviations flags that feature and only that one, in both /monitoring and /metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from src.serve.app import create_app
from src.serve.settings import SettingsError
from tests.artifact_factory import IRIS_FEATURES, BuiltArtifact, build_iris_artifact
from tests.unit_tests.serve.helpers import ADMIN, AUTH, OTHER_KEY, AppClient, make_settings
from tests.unit_tests.serve.monitoring.helpers import iris_traffic, row_dicts

WINDOW = 400


@pytest.fixture
def app_client(clean_env, artifacts: Path, iris: BuiltArtifact) -> Iterator[AppClient]:
    settings = make_settings(
        artifacts,
        monitoring_window=WINDOW,
        monitoring_cache_seconds=0,
        monitoring_min_samples=100,
    )
    with AppClient(create_app(settings)) as running:
        yield running


def send(client: AppClient, n: int, *, seed: int, shift: dict[str, float] | None = None) -> None:
    """n rows: the first 50 one by one through /predict, the rest through /predict/batch."""
    rows = row_dicts(iris_traffic(n, seed=seed, shift=shift)[0])
    for row in rows[:50]:
        assert client.post("/predict", json=row, headers=AUTH).status_code == 200
    for start in range(50, n, 100):
        body = {"records": rows[start : start + 100]}
        assert client.post("/predict/batch", json=body, headers=AUTH).status_code == 200


def drift_series(client: AppClient) -> dict[str, dict[str, float]]:
    """{feature: {"psi": ..., "status": ...}} from /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(response.text):
        if family.name in ("model_feature_drift_psi", "model_feature_drift_status"):
            key = family.name.rsplit("_", 1)[1]
            for sample in family.samples:
                out.setdefault(sample.labels["feature"], {})[key] = sample.value
    return out


def test_drift_is_low_in_distribution_and_flags_only_the_shifted_feature(app_client) -> None:
    send(app_client, WINDOW, seed=51)
    body = app_client.get("/monitoring", headers=AUTH).json()
    assert body["window"]["rows"] == WINDOW
    assert body["window"]["size"] == WINDOW
    assert body["status"] == "ok"
    assert body["drifted_features"] == []
    for name in IRIS_FEATURES:
        assert body["features"][name]["psi"] < 0.1, (name, body["features"][name])
    series = drift_series(app_client)
    assert set(series) == set(IRIS_FEATURES)
    for name in IRIS_FEATURES:
        assert series[name]["status"] == 0
        assert series[name]["psi"] < 0.1

    send(app_client, WINDOW, seed=52, shift={"petal_width": 3.0})  # fills the window
    body = app_client.get("/monitoring", headers=AUTH).json()
    assert body["window"]["rows_seen"] == 2 * WINDOW
    assert body["drifted_features"] == ["petal_width"]
    assert body["features"]["petal_width"]["status"] == "drift"
    assert body["features"]["petal_width"]["psi"] > 1.0
    for name in IRIS_FEATURES[:3]:
        assert body["features"][name]["status"] == "ok", (name, body["features"][name])
    quality = body["features"]["petal_width"]["data_quality"]
    assert quality["window"]["out_of_range"] > WINDOW / 2
    assert quality["total"]["out_of_range"] >= quality["window"]["out_of_range"]
    series = drift_series(app_client)
    flagged = {name for name, s in series.items() if s["status"] == 2}
    assert flagged == {"petal_width"}
    assert series["petal_width"]["psi"] > 1.0
    assert all(series[name]["psi"] < 0.1 for name in IRIS_FEATURES[:3])
    metrics = app_client.get("/metrics").text
    assert 'model_monitoring_rows_total{model_name="iris_classifier"} 800.0' in metrics
    assert 'model_input_out_of_range_total{feature="petal_width"' in metrics


def test_monitoring_is_authenticated_like_predictions(app_client) -> None:
    assert app_client.get("/monitoring").status_code == 401
    assert app_client.get("/monitoring", headers={"X-API-Key": "wrong"}).status_code == 403
    assert app_client.get("/monitoring", headers={"X-API-Key": OTHER_KEY}).status_code == 200
    body = app_client.get("/monitoring?histograms=true", headers=AUTH).json()
    assert body["status"] == "insufficient_data"
    assert len(body["features"]["sepal_length"]["histogram"]["bins"]) == 10


def test_window_export_needs_the_admin_key_and_feeds_the_report(app_client) -> None:
    send(app_client, 60, seed=53)
    assert app_client.get("/monitoring/window", headers=AUTH).status_code == 403
    exported = app_client.get("/monitoring/window", headers=ADMIN).json()
    assert exported["format"] == "mlops-monitoring-window"
    assert exported["columns"] == [*IRIS_FEATURES, "prediction"]
    assert len(exported["rows"]) == 60
    assert exported["rows"][0][4] in ("setosa", "versicolor", "virginica")
    response = app_client.get("/monitoring/window?format=csv", headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == ",".join([*IRIS_FEATURES, "prediction"])
    assert len(lines) == 61


def test_a_hot_swapped_model_gets_a_fresh_window(app_client, artifacts) -> None:
    send(app_client, 60, seed=54)
    newer = build_iris_artifact(artifacts, C=0.5)
    reload = app_client.post("/admin/reload", headers=ADMIN)
    assert reload.status_code == 200, reload.text
    body = app_client.get("/monitoring", headers=AUTH).json()
    assert body["model_version"] == newer.model_version
    assert body["window"]["rows_seen"] == 0
    send(app_client, 60, seed=55)
    assert app_client.get("/monitoring", headers=AUTH).json()["window"]["rows_seen"] == 60
    # the row counter carries on across versions (a counter never goes back)
    assert 'model_monitoring_rows_total{model_name="iris_classifier"} 120.0' in (
        app_client.get("/metrics").text
    )


def test_disabled_monitoring_costs_nothing_and_answers_404(clean_env, artifacts, iris) -> None:
    settings = make_settings(artifacts, monitoring_enabled=False)
    with AppClient(create_app(settings)) as client:
        assert client.post("/predict", json=row_dicts(iris_traffic(1)[0])[0], headers=AUTH)
        assert client.app.state.serve.monitoring is None
        response = client.get("/monitoring", headers=AUTH)
        assert response.status_code == 404
        assert "MONITORING_ENABLED" in response.json()["error"]["message"]
        assert "model_feature_drift" not in client.get("/metrics").text


def test_no_model_loaded_answers_503(clean_env, artifacts) -> None:
    with AppClient(create_app(make_settings(artifacts))) as client:
        assert client.get("/monitoring", headers=AUTH).status_code == 503


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"monitoring_psi_warn": 0.3, "monitoring_psi_drift": 0.2}, "MONITORING_PSI_WARN"),
        ({"monitoring_window": 0}, "MONITORING_WINDOW"),
        ({"monitoring_min_samples": 0}, "MONITORING_MIN_SAMPLES"),
    ],
)
def test_invalid_monitoring_settings_are_refused(clean_env, artifacts, overrides, message):
    with pytest.raises(SettingsError, match=message):
        make_settings(artifacts, **overrides)
