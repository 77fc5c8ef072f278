"""Several models in one app: routes by name, independent failures, aliases, discovery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest

from src.artifact_contract.aliases import move_alias
from src.serve.app import create_app
from src.serve.lean_predict import NAMED_BATCH_PATH, NAMED_PREDICT_PATH, lean_target
from src.serve.reload_signal import ReloadGeneration, prepare_generation_file
from tests.artifact_factory import (
    BuiltArtifact,
    build_iris_artifact,
    build_regressor_artifact,
    diabetes_frame,
    new_version,
)
from tests.polling import wait_for
from tests.unit_tests.serve.helpers import (
    ADMIN,
    AUTH,
    IRIS_ROW,
    AppClient,
    make_settings,
    metric_value,
)

DIABETES_ROW = diabetes_frame()[0].iloc[3].to_dict()


@pytest.fixture
def regressor(artifacts: Path) -> BuiltArtifact:
    return build_regressor_artifact(artifacts)


def _models(client: AppClient) -> dict[str, dict]:
    r = client.get("/models", headers=AUTH)
    assert r.status_code == 200
    return {m["name"]: m for m in r.json()["models"]}


def test_two_models_answer_by_name_and_the_first_is_the_default(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact, regressor: BuiltArtifact
) -> None:
    settings = make_settings(artifacts, model_names="iris_classifier,diabetes_regressor")
    with AppClient(create_app(settings)) as client:
        models = _models(client)
        assert list(models) == ["iris_classifier", "diabetes_regressor"]
        assert models["diabetes_regressor"] == {
            "name": "diabetes_regressor",
            "default": False,
            "follows": "LATEST",
            "ready": True,
            "version": regressor.model_version,
            "backend": "sklearn",
            "reason": None,
        }
        r = client.post("/models/diabetes_regressor/predict", json=DIABETES_ROW, headers=AUTH)
        assert r.status_code == 200
        pipeline = joblib.load(regressor.directory / "model.joblib")
        expected = float(pipeline.predict(pd.DataFrame([DIABETES_ROW]))[0])
        assert r.json()["prediction"] == pytest.approx(expected)
        assert r.json()["model_name"] == "diabetes_regressor"
        assert r.headers["x-model-version"] == regressor.model_version
        batch = client.post(
            "/models/iris_classifier/predict/batch",
            json={"records": [IRIS_ROW, IRIS_ROW]},
            headers=AUTH,
        )
        assert [p["prediction"] for p in batch.json()["predictions"]] == ["setosa", "setosa"]
        default = client.post("/predict", json=IRIS_ROW, headers=AUTH).json()
        assert default["model_name"] == "iris_classifier"
        assert client.get("/model", headers=AUTH).json()["model_name"] == "iris_classifier"
        info = client.get("/models/diabetes_regressor", headers=AUTH).json()
        assert info["task"] == "regression"
        assert info["target"]["classes"] is None
        missing = client.post("/models/nope/predict", json=IRIS_ROW, headers=AUTH)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert client.get("/models/nope", headers=AUTH).status_code == 404
        assert client.post("/models/nope/predict", json=IRIS_ROW).status_code == 401
        assert client.get("/models").status_code == 401
        text = client.get("/metrics").text
        for name in ("iris_classifier", "diabetes_regressor"):
            assert metric_value(text, "serve_model_ready", {"model_name": name}) == 1
        by_regressor = {"model_name": "diabetes_regressor", "predicted_class": ""}
        assert metric_value(text, "serve_predictions_total", by_regressor) == 1
        # the drift monitor watches the default model, not the one loaded last
        assert client.get("/monitoring", headers=AUTH).json()["model_name"] == "iris_classifier"


def _corrupt(built: BuiltArtifact) -> None:
    path = built.directory / "model.joblib"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")


def test_a_broken_model_leaves_the_others_serving(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact, regressor: BuiltArtifact
) -> None:
    _corrupt(regressor)
    settings = make_settings(artifacts, model_names="iris_classifier,diabetes_regressor")
    with AppClient(create_app(settings)) as client:
        health = client.get("/health")
        assert health.status_code == 200  # the default model serves: the service is ready
        broken = {m["name"]: m for m in health.json()["models"]}["diabetes_regressor"]
        assert broken["ready"] is False
        assert "sha256" in broken["reason"]
        assert "sha256" in _models(client)["diabetes_regressor"]["reason"]
        r = client.post("/models/diabetes_regressor/predict", json=DIABETES_ROW, headers=AUTH)
        assert r.status_code == 503
        assert "diabetes_regressor" in r.json()["error"]["message"]
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200
        text = client.get("/metrics").text
        labels = {"model_name": "diabetes_regressor"}
        assert metric_value(text, "serve_model_ready", labels) == 0


def test_a_broken_default_model_makes_health_503_but_others_serve(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact, regressor: BuiltArtifact
) -> None:
    _corrupt(iris)
    settings = make_settings(artifacts, model_names="iris_classifier,diabetes_regressor")
    with AppClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 503
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 503
        r = client.post("/models/diabetes_regressor/predict", json=DIABETES_ROW, headers=AUTH)
        assert r.status_code == 200


def test_a_model_follows_its_alias_on_reload(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact, regressor: BuiltArtifact
) -> None:
    v2 = build_iris_artifact(artifacts, model_version=new_version(5), C=0.05)
    move_alias(artifacts / "iris_classifier", "champion", iris.model_version, action="promote")
    settings = make_settings(artifacts, model_names="iris_classifier@champion,diabetes_regressor")
    with AppClient(create_app(settings)) as client:
        assert _models(client)["iris_classifier"]["version"] == iris.model_version  # not LATEST
        assert _models(client)["iris_classifier"]["follows"] == "alias:champion"
        move_alias(artifacts / "iris_classifier", "champion", v2.model_version, action="promote")
        r = client.post("/admin/reload", headers=ADMIN)
        assert r.json()["models"]["iris_classifier"]["status"] == "loaded"
        assert r.json()["models"]["diabetes_regressor"]["status"] == "unchanged"
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).json()["model_version"] == (
            v2.model_version
        )


def test_an_unset_alias_is_a_reason_not_a_crash(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    settings = make_settings(artifacts, model_names="iris_classifier@champion")
    with AppClient(create_app(settings)) as client:
        body = client.get("/health").json()
        assert body["status"] == "not_ready"
        assert "no alias 'champion'" in body["reason"]


def test_star_serves_every_model_and_picks_up_new_ones(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    settings = make_settings(artifacts, model_names="*")
    with AppClient(create_app(settings)) as client:
        assert list(_models(client)) == ["iris_classifier"]
        regressor = build_regressor_artifact(artifacts)
        (artifacts / ".tmp-half-written").mkdir()
        client.post("/admin/reload", headers=ADMIN)
        models = _models(client)
        assert list(models) == ["iris_classifier", "diabetes_regressor"]
        assert models["diabetes_regressor"]["version"] == regressor.model_version


def test_named_predictions_take_the_lean_path_with_the_route_template(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact, regressor: BuiltArtifact
) -> None:
    settings = make_settings(artifacts, model_names="iris_classifier,diabetes_regressor")
    app = create_app(settings)
    calls = []
    route, original = app.lean_predict.routes[NAMED_PREDICT_PATH]

    async def spy(*args: Any) -> bytes:
        calls.append(args[2])
        return await original(*args)

    app.lean_predict.routes[NAMED_PREDICT_PATH] = (route, spy)
    with AppClient(app) as client:
        r = client.post("/models/diabetes_regressor/predict", json=DIABETES_ROW, headers=AUTH)
        assert r.status_code == 200
        assert client.post("/models/nope/predict", json=IRIS_ROW, headers=AUTH).status_code == 404
        assert client.post("/models//predict", json=IRIS_ROW, headers=AUTH).status_code == 404
        text = client.get("/metrics").text
    assert calls == ["diabetes_regressor", "nope"]
    labels = {"route": "/models/{name}/predict", "method": "POST", "status": "200"}
    assert metric_value(text, "serve_http_requests_total", labels) == 1
    assert 'route="/models/nope' not in text  # a client's name is never a label value


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/predict", ("/predict", None)),
        ("/predict/batch", ("/predict/batch", None)),
        ("/models/iris/predict", (NAMED_PREDICT_PATH, "iris")),
        ("/models/iris/predict/batch", (NAMED_BATCH_PATH, "iris")),
        ("/models/iris", None),
        ("/models//predict", None),
        ("/models/a/b/predict", None),
        ("/models/iris/predict/", None),
    ],
)
def test_lean_target(path: str, expected: tuple[str, str | None] | None) -> None:
    assert lean_target(path) == expected


def test_a_bumped_generation_makes_the_poller_reload_without_polling(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact, tmp_path: Path
) -> None:
    path = prepare_generation_file(tmp_path)
    settings = make_settings(artifacts, reload_generation_file=path)  # MODEL_POLL_SECONDS=0
    with AppClient(create_app(settings)) as client:
        v2 = build_iris_artifact(artifacts, model_version=new_version(5), C=0.05)
        ReloadGeneration(path).bump()  # what another worker's POST /admin/reload does
        wait_for(
            lambda: client.get("/health").json()["model_version"] == v2.model_version,
            30,
            "the reload another worker asked for",
        )
        client.post("/admin/reload", headers=ADMIN)
    assert ReloadGeneration(path).read() == 2  # this worker's admin reload told the others


def test_an_unwritable_generation_file_does_not_fail_the_reload(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact, tmp_path: Path
) -> None:
    missing_dir = tmp_path / "no-such-dir" / "reload-generation"
    settings = make_settings(artifacts, reload_generation_file=missing_dir)
    with AppClient(create_app(settings)) as client:
        v2 = build_iris_artifact(artifacts, model_version=new_version(5), C=0.05)
        r = client.post("/admin/reload", headers=ADMIN)
        assert r.status_code == 200
        assert r.json()["model_version"] == v2.model_version
