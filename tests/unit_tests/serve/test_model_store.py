"""The model store: hot reload (by admin and poller), atomic swap, broken versions refused."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from src.serve.app import create_app
from src.serve.model_store import ModelStore
from tests.artifact_factory import (
    BuiltArtifact,
    build_iris_artifact,
    iris_frame,
    new_version,
    set_latest,
)
from tests.unit_tests.serve.helpers import (
    ADMIN,
    AUTH,
    IRIS_ROW,
    AppClient,
    make_settings,
    metric_value,
    publish_custom_artifact,
    wait_until,
)

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]


def _version(client: AppClient) -> str | None:
    return client.get("/health").json()["model_version"]


def _publish_broken(artifacts: Path) -> BuiltArtifact:
    # Corrupt before LATEST names it, or a fast poller could load the good bytes first.
    broken = build_iris_artifact(artifacts, model_version=new_version(5), set_latest=False)
    model = broken.directory / "model.joblib"
    data = bytearray(model.read_bytes())
    data[-10] ^= 0xFF
    model.write_bytes(bytes(data))
    set_latest(artifacts, broken.model_name, broken.model_version)
    return broken


def _failures(client: AppClient, reason: str) -> float:
    return metric_value(
        client.get("/metrics").text,
        "serve_model_reload_failures_total",
        {"model_name": "iris_classifier", "reason": reason},
    )


def test_admin_reload_swaps_to_the_new_version(
    client: AppClient, artifacts: Path, iris: BuiltArtifact
) -> None:
    v2 = build_iris_artifact(artifacts, model_version=new_version(5), C=0.05)
    assert _version(client) == iris.model_version  # no poller: nothing changes by itself
    r = client.post("/admin/reload", headers=ADMIN)
    assert r.status_code == 200
    assert r.json() == {
        "status": "loaded",
        "model_name": "iris_classifier",
        "model_version": v2.model_version,
        "previous_version": iris.model_version,
        "api_version": r.json()["api_version"],
        "models": {
            "iris_classifier": {
                "status": "loaded",
                "model_version": v2.model_version,
                "previous_version": iris.model_version,
                "error": None,
            }
        },
    }
    assert _version(client) == v2.model_version
    p = client.post("/predict", json=IRIS_ROW, headers=AUTH)
    assert p.json()["model_version"] == v2.model_version
    assert p.headers["x-model-version"] == v2.model_version
    text = client.get("/metrics").text
    new = {"model_name": "iris_classifier", "model_version": v2.model_version, "backend": "sklearn"}
    assert metric_value(text, "serve_model_info", new) == 1
    info_lines = [line for line in text.splitlines() if line.startswith("serve_model_info{")]
    assert len(info_lines) == 1  # the previous version's series is gone
    assert metric_value(text, "serve_model_loads_total", {"model_name": "iris_classifier"}) == 2
    again = client.post("/admin/reload", headers=ADMIN).json()
    assert again["status"] == "unchanged"
    assert again["previous_version"] == v2.model_version


def test_poller_picks_up_a_new_version(artifacts: Path, iris: BuiltArtifact) -> None:
    with AppClient(create_app(make_settings(artifacts, model_poll_seconds=0.05))) as client:
        assert _version(client) == iris.model_version
        v2 = build_iris_artifact(artifacts, model_version=new_version(5))
        wait_until(lambda: _version(client) == v2.model_version)


def test_starts_without_a_model_and_becomes_ready_when_one_is_published(artifacts: Path) -> None:
    with AppClient(create_app(make_settings(artifacts, model_poll_seconds=0.05))) as client:
        assert client.get("/health").status_code == 503
        built = build_iris_artifact(artifacts)
        wait_until(lambda: client.get("/health").status_code == 200)
        assert _version(client) == built.model_version
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200


def test_a_rollback_of_latest_is_followed(
    client: AppClient, artifacts: Path, iris: BuiltArtifact
) -> None:
    v2 = build_iris_artifact(artifacts, model_version=new_version(5))
    assert client.post("/admin/reload", headers=ADMIN).json()["model_version"] == v2.model_version
    (artifacts / "iris_classifier" / "LATEST").write_text(iris.model_version)
    assert client.post("/admin/reload", headers=ADMIN).json()["model_version"] == iris.model_version


def test_broken_new_version_is_refused_and_the_old_keeps_serving(
    artifacts: Path, iris: BuiltArtifact
) -> None:
    with AppClient(create_app(make_settings(artifacts, model_poll_seconds=0.02))) as client:
        _publish_broken(artifacts)
        wait_until(lambda: _failures(client, "artifact_integrity") == 1)
        # Many poll intervals later the same broken files were not retried in a loop.
        threading.Event().wait(0.3)
        assert _failures(client, "artifact_integrity") == 1
        assert _version(client) == iris.model_version
        r = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert r.status_code == 200
        assert r.json()["model_version"] == iris.model_version
        # An admin reload retries it, reports why it was refused, and counts it.
        admin = client.post("/admin/reload", headers=ADMIN)
        assert admin.status_code == 409
        body = admin.json()
        assert body["error"]["code"] == "reload_failed"
        assert "sha256 of model.joblib does not match" in body["error"]["message"]
        assert f"Still serving version {iris.model_version}" in body["error"]["message"]
        assert _failures(client, "artifact_integrity") == 2
        # A good version published after the broken one is loaded.
        v3 = build_iris_artifact(artifacts, model_version=new_version(10))
        wait_until(lambda: _version(client) == v3.model_version)


def test_broken_first_version_is_503_with_reason(artifacts: Path) -> None:
    _publish_broken(artifacts)
    with AppClient(create_app(make_settings(artifacts))) as client:
        r = client.get("/health")
        assert r.status_code == 503
        assert "model refused" in r.json()["reason"]
        assert "sha256" in r.json()["reason"]
        admin = client.post("/admin/reload", headers=ADMIN)
        assert admin.status_code == 503
        assert admin.json()["error"]["code"] == "model_not_ready"


def test_latest_pointing_nowhere_while_serving_is_409(client: AppClient, artifacts: Path) -> None:
    (artifacts / "iris_classifier" / "LATEST").write_text("20990101T000000000000Z\n")
    r = client.post("/admin/reload", headers=ADMIN)
    assert r.status_code == 409
    assert "does not exist" in r.json()["error"]["message"]
    assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200


def test_a_pinned_version_ignores_latest(artifacts: Path, iris: BuiltArtifact) -> None:
    settings = make_settings(artifacts, model_version=iris.model_version, model_poll_seconds=0.02)
    with AppClient(create_app(settings)) as client:
        build_iris_artifact(artifacts, model_version=new_version(5))
        threading.Event().wait(0.2)
        assert _version(client) == iris.model_version
        assert client.post("/admin/reload", headers=ADMIN).json()["status"] == "unchanged"


def test_in_flight_requests_finish_on_the_old_model(
    client: AppClient, artifacts: Path, iris: BuiltArtifact
) -> None:
    old_model = client.app.state.serve.store.current
    original = old_model.backend.predict
    entered, release = threading.Event(), threading.Event()

    def slow_predict(rows: object) -> object:
        entered.set()
        release.wait(10)
        return original(rows)

    object.__setattr__(old_model.backend, "predict", slow_predict)
    results: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: results.update(r=client.post("/predict", json=IRIS_ROW, headers=AUTH))
    )
    worker.start()
    assert entered.wait(10)
    v2 = build_iris_artifact(artifacts, model_version=new_version(5))
    assert client.post("/admin/reload", headers=ADMIN).json()["model_version"] == v2.model_version
    new = client.post("/predict", json=IRIS_ROW, headers=AUTH)  # not blocked by the old one
    assert new.json()["model_version"] == v2.model_version
    release.set()
    worker.join(10)
    in_flight = results["r"]
    assert in_flight.status_code == 200  # type: ignore[attr-defined]
    assert in_flight.json()["model_version"] == iris.model_version  # type: ignore[attr-defined]
    assert in_flight.headers["x-model-version"] == iris.model_version  # type: ignore[attr-defined]


def test_openapi_follows_the_loaded_model(client: AppClient, artifacts: Path) -> None:
    first = client.get("/openapi.json").json()
    assert set(first["components"]["schemas"]["PredictRequest"]["properties"]) == {
        *IRIS_ROW,
        "request_id",
    }
    frame, target = iris_frame()
    frame = frame[["petal_length", "petal_width"]]
    version = publish_custom_artifact(
        artifacts,
        model_name="iris_classifier",
        frame=frame,
        target=target,
        pipeline=LogisticRegression(max_iter=500),
        feature_specs=[
            {"name": n, "type": "number", "categories": None, "allow_unknown": False}
            for n in frame.columns
        ],
        task="classification",
    )
    assert client.post("/admin/reload", headers=ADMIN).json()["model_version"] == version
    second = client.get("/openapi.json").json()
    assert set(second["components"]["schemas"]["PredictRequest"]["properties"]) == {
        "petal_length",
        "petal_width",
        "request_id",
    }
    assert second["info"]["x-model"]["version"] == version
    r = client.post("/predict", json={"petal_length": 1.4, "petal_width": 0.2}, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["prediction"] == "setosa"
    old_shape = client.post("/predict", json=IRIS_ROW, headers=AUTH)
    assert old_shape.status_code == 422


def test_reload_is_serialised(artifacts: Path, iris: BuiltArtifact) -> None:
    settings = make_settings(artifacts)
    app = create_app(settings)
    store: ModelStore = app.state.serve.store
    build_iris_artifact(artifacts, model_version=new_version(5))
    results = []
    threads = [threading.Thread(target=lambda: results.append(store.reload())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == ["loaded", "unchanged", "unchanged", "unchanged"]
