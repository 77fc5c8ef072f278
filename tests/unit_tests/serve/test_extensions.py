"""The seams later features plug into: hooks and the inference service."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from src.serve.app import create_app
from src.serve.backends.base import Prediction, Row
from src.serve.hooks import HookRegistry
from src.serve.inference import InferenceService
from src.serve.loaded_model import LoadedModel
from tests.artifact_factory import BuiltArtifact, build_iris_artifact, new_version
from tests.unit_tests.serve.helpers import ADMIN, AUTH, IRIS_ROW, AppClient, make_settings

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]


class RecordingHook:
    def __init__(self) -> None:
        self.loaded: list[tuple[str, str | None]] = []
        self.rows: list[tuple[Any, ...]] = []
        self.labels: list[Any] = []

    def on_model_loaded(self, model: LoadedModel, previous: LoadedModel | None) -> None:
        self.loaded.append((model.version, previous.version if previous else None))

    def on_predictions(
        self, model: LoadedModel, rows: Sequence[Row], predictions: Sequence[Prediction]
    ) -> None:
        self.rows.extend(tuple(r) for r in rows)
        self.labels.extend(p.prediction for p in predictions)


class BrokenHook(RecordingHook):
    def on_predictions(self, *args: Any) -> None:
        raise RuntimeError("monitoring bug")


def test_hooks_see_swaps_and_every_answered_row(artifacts: Path, iris: BuiltArtifact) -> None:
    app = create_app(make_settings(artifacts))
    hook, broken = RecordingHook(), BrokenHook()
    app.state.serve.hooks.add(broken)  # a failing hook never breaks serving...
    app.state.serve.hooks.add(hook)  # ...nor the hooks after it
    with AppClient(app) as client:
        client.post("/predict", json=dict(reversed(list(IRIS_ROW.items()))), headers=AUTH)
        client.post("/predict/batch", json={"records": [IRIS_ROW, IRIS_ROW]}, headers=AUTH)
        client.post("/predict", json={}, headers=AUTH)  # invalid: never reaches the hooks
        v2 = build_iris_artifact(artifacts, model_version=new_version(5))
        client.post("/admin/reload", headers=ADMIN)
    assert hook.rows == [tuple(IRIS_ROW.values())] * 3  # feature order, whatever the JSON order
    assert hook.labels == ["setosa"] * 3
    assert hook.loaded == [(iris.model_version, None), (v2.model_version, iris.model_version)]


class CountingInference(InferenceService):
    def __init__(self, hooks: HookRegistry) -> None:
        super().__init__(hooks)
        self.events: list[str] = []

    async def infer(self, model: LoadedModel, rows: Sequence[Row]) -> list[Prediction]:
        self.events.append(f"infer {len(rows)}")
        return await super().infer(model, rows)

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")


def test_an_inference_service_can_be_plugged_in(artifacts: Path, iris: BuiltArtifact) -> None:
    app = create_app(make_settings(artifacts), inference_factory=CountingInference)
    service = app.state.serve.inference
    with AppClient(app) as client:
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200
        batch = {"records": [IRIS_ROW] * 3}
        assert client.post("/predict/batch", json=batch, headers=AUTH).status_code == 200
    assert service.events == ["start", "infer 1", "infer 3", "stop"]
