"""The backend choice: INFERENCE_BACKEND (auto, onnx, sklearn) and ALLOW_PICKLE."""

from __future__ import annotations

from pathlib import Path

import joblib
import pytest

from src.serve.artifact import load_artifact, resolve
from src.serve.backends.base import Backend
from src.serve.backends.factory import create_backend
from src.serve.backends.onnx import OnnxBackend
from src.serve.backends.sklearn import SklearnBackend
from src.serve.errors import IntegrityError, NoOnnxError
from src.serve.settings import SettingsError
from tests.artifact_factory import BuiltArtifact
from tests.unit_tests.serve.backends.support import (
    LogLines,
    app_client,
    corrupt_onnx,
    iris_records,
)
from tests.unit_tests.serve.helpers import AUTH, IRIS_ROW, make_settings

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")
PROBE_ROW = tuple(IRIS_ROW.values())


def _choose(artifacts: Path, **settings: object) -> Backend:
    resolved = make_settings(artifacts, **settings)
    ref = resolve(artifacts, "iris_classifier")
    artifact = load_artifact(ref, resolved.keyring(), deserialize=False)
    return create_backend(artifact, PROBE_ROW, resolved)


def test_auto_chooses_onnx_when_published_and_sklearn_otherwise(
    artifacts: Path, iris_onnx: BuiltArtifact
) -> None:
    assert isinstance(_choose(artifacts), OnnxBackend)
    assert isinstance(_choose(artifacts, inference_backend="sklearn"), SklearnBackend)
    (iris_onnx.directory / "model.onnx").unlink()
    assert isinstance(_choose(artifacts), SklearnBackend)  # a missing file: fallback


def test_onnx_refuses_with_the_loader_reason_and_the_setting_named(
    artifacts: Path, iris: BuiltArtifact
) -> None:
    with pytest.raises(NoOnnxError, match=r"no model\.onnx is published.*INFERENCE_BACKEND=onnx"):
        _choose(artifacts, inference_backend="onnx")


def test_a_refusal_without_the_pickle_fallback_keeps_the_loader_error_type(
    artifacts: Path, iris_onnx: BuiltArtifact
) -> None:
    corrupt_onnx(iris_onnx)
    with pytest.raises(IntegrityError, match="ALLOW_PICKLE=false forbids"):
        _choose(artifacts, allow_pickle=False)


def test_auto_serves_onnx_and_health_and_model_say_so(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris_onnx: BuiltArtifact
) -> None:
    with app_client(artifacts) as client:
        assert client.get("/health").json()["backend"] == "onnx"
        assert client.get("/model", headers=AUTH).json()["backend"] == "onnx"
        assert 'backend="onnx"' in client.get("/metrics").text


def test_a_model_without_onnx_is_served_by_sklearn_under_auto(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact, log_lines: LogLines
) -> None:
    with app_client(artifacts, log_lines) as client:
        health = client.get("/health").json()
        assert health["status"] == "ready"
        assert health["backend"] == "sklearn"
        assert client.post("/predict", json=iris_records()[0], headers=AUTH).status_code == 200
    assert any("no model.onnx is published" in line for line in log_lines)


def test_a_model_without_onnx_is_refused_under_onnx(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    with app_client(artifacts, inference_backend="onnx") as client:
        health = client.get("/health")
        assert health.status_code == 503
        reason = health.json()["reason"]
        assert "no model.onnx is published" in reason
        assert "INFERENCE_BACKEND=onnx" in reason
        assert "not exported by the test factory" in reason  # metadata's reason is quoted
        assert client.post("/predict", json=iris_records()[0], headers=AUTH).status_code == 503


def test_auto_falls_back_to_sklearn_for_a_corrupted_onnx_and_logs_why(
    clean_env: pytest.MonkeyPatch,
    artifacts: Path,
    iris_onnx: BuiltArtifact,
    log_lines: LogLines,
) -> None:
    corrupt_onnx(iris_onnx)
    with app_client(artifacts, log_lines) as client:
        assert client.get("/health").json()["backend"] == "sklearn"
        assert client.post("/predict", json=iris_records()[0], headers=AUTH).status_code == 200
    assert any(
        "serving with scikit-learn" in line and "sha256 of model.onnx" in line for line in log_lines
    )


def test_allow_pickle_false_serves_onnx_without_ever_reading_the_pickle(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris_onnx: BuiltArtifact
) -> None:
    # Garbage in place of the pickle while metadata keeps the original sha256 and size: any
    # read would be refused by the sha256 check, any unpickle would fail.
    pickle_path = iris_onnx.directory / "model.joblib"
    pickle_path.write_bytes(b"\x00" * pickle_path.stat().st_size)

    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("model.joblib must not be unpickled")

    clean_env.setattr(joblib, "load", forbidden)
    with app_client(artifacts, allow_pickle=False) as client:
        assert client.get("/health").json()["backend"] == "onnx"
        response = client.post("/predict", json=iris_records()[0], headers=AUTH)
        assert response.status_code == 200
        assert response.json()["prediction"] == "setosa"


def test_allow_pickle_false_refuses_a_model_without_onnx(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("model.joblib must not be unpickled")

    clean_env.setattr(joblib, "load", forbidden)
    with app_client(artifacts, allow_pickle=False) as client:
        health = client.get("/health")
        assert health.status_code == 503
        reason = health.json()["reason"]
        assert "no model.onnx is published" in reason
        assert "ALLOW_PICKLE=false" in reason


def test_sklearn_backend_without_pickles_is_an_invalid_setting(artifacts: Path) -> None:
    with pytest.raises(SettingsError, match="INFERENCE_BACKEND=sklearn needs ALLOW_PICKLE=true"):
        make_settings(artifacts, inference_backend="sklearn", allow_pickle=False)
