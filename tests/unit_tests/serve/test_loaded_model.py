"""Building a loaded model: verified, warmed up with one prediction, or refused."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from src.serve import loaded_model
from src.serve.artifact import LoadedArtifact, resolve
from src.serve.backends.base import Backend, Prediction, Row
from src.serve.errors import ModelLoadError, NoOnnxError
from src.serve.loaded_model import build_loaded_model
from src.serve.settings import Settings
from tests.artifact_factory import BuiltArtifact
from tests.unit_tests.serve.helpers import IRIS_ROW, make_settings

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]


class FixedBackend(Backend):
    """Answers every call with ``answers`` (or raises ``error``)."""

    name = "fixed"

    def __init__(self, answers: list[Prediction], error: Exception | None = None) -> None:
        self.answers = answers
        self.error = error

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        if self.error is not None:
            raise self.error
        return self.answers


def _serve_with(monkeypatch: pytest.MonkeyPatch, backend: Backend) -> None:
    def create_backend(artifact: LoadedArtifact, probe_row: Row, settings: Settings) -> Backend:
        return backend

    monkeypatch.setattr(loaded_model, "create_backend", create_backend)


def test_a_model_is_built_from_its_metadata_and_answers(
    artifacts: Path, iris: BuiltArtifact
) -> None:
    model = build_loaded_model(resolve(artifacts, "iris_classifier"), make_settings(artifacts))

    assert (model.name, model.version) == ("iris_classifier", iris.model_version)
    assert model.is_classifier
    assert datetime.fromisoformat(model.loaded_at_iso).timestamp() == pytest.approx(model.loaded_at)
    assert model.load_seconds > 0
    (answer,) = model.backend.predict([tuple(IRIS_ROW.values())])
    assert answer.prediction in iris.metadata["target"]["classes"]


def test_a_backend_failing_its_warm_up_prediction_is_refused(
    monkeypatch: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    _serve_with(monkeypatch, FixedBackend([], error=ValueError("broken graph")))

    with pytest.raises(ModelLoadError, match="warm-up prediction failed"):
        build_loaded_model(resolve(artifacts, "iris_classifier"), make_settings(artifacts))


def test_a_backend_answering_the_wrong_number_of_rows_is_refused(
    monkeypatch: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    _serve_with(monkeypatch, FixedBackend([Prediction("setosa", None)] * 2))

    with pytest.raises(ModelLoadError, match="warm-up returned 2 rows for 1"):
        build_loaded_model(resolve(artifacts, "iris_classifier"), make_settings(artifacts))


def test_a_refusal_from_the_backend_choice_keeps_its_own_reason(
    artifacts: Path, iris: BuiltArtifact
) -> None:
    settings = make_settings(artifacts, inference_backend="onnx")

    with pytest.raises(NoOnnxError, match=r"no model\.onnx is published"):
        build_loaded_model(resolve(artifacts, "iris_classifier"), settings)
