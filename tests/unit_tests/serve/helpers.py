"""Test helpers for the serving unit tests: settings, a synchronous ASGI client, artifacts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, ExitStack
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import numpy as np
import pandas as pd
from fastapi import FastAPI
from sklearn.base import BaseEstimator, ClassifierMixin

from src.serve.settings import Settings, load_settings
from tests.artifact_factory import (
    artifact_metadata,
    dump_model,
    new_version,
    one_candidate_metrics,
    publish,
)
from tests.polling import wait_for

API_KEY = "test-api-key-0123456789"
OTHER_KEY = "test-api-key-other-9876"
ADMIN_KEY = "test-admin-key-abcdef012"
IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SETTINGS_ENV_VARS = [name.upper() for name in Settings.model_fields] + [
    "SERVE_CONFIG",
    "PROMETHEUS_MULTIPROC_DIR",
    "prometheus_multiproc_dir",
]


def make_settings(artifacts_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test app: keys configured, no poller unless asked.

    The factory's artifacts are unsigned unless asked, so these apps accept unsigned models
    (ALLOW_UNSIGNED=true); signature checking, the production default, is tested with
    ``allow_unsigned=False`` in test_signing.py and the other hardening tests.
    """
    values: dict[str, Any] = {
        "artifacts_dir": artifacts_dir,
        "api_keys": f"{API_KEY},{OTHER_KEY}",
        "admin_api_keys": ADMIN_KEY,
        "model_poll_seconds": 0,
        "allow_unsigned": True,
        # hermetic: never a local key file from the directory the tests run in
        "artifact_signing_local_fallback": False,
        # Freezing the heap is process-wide: in a test process that builds hundreds of apps it
        # would keep every earlier test's garbage forever (tested on its own in test_heap.py).
        "gc_freeze": False,
    }
    values.update(overrides)
    return load_settings(**values)


class _WithLifespanState:
    """An ASGI app whose requests carry a copy of ``state`` in ``scope["state"]``."""

    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app({**scope, "state": dict(self.state)}, receive, send)


class AppClient:
    """Runs an app's lifespan on a background event loop and sends requests with httpx.

    Like starlette's TestClient, but on httpx's ASGITransport (no deprecated shim). Each
    request's scope gets a copy of the lifespan's state, as uvicorn gives it.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._stack = ExitStack()

    def __enter__(self) -> AppClient:
        self.portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        lifespan: AbstractAsyncContextManager[Any] = self.app.router.lifespan_context(self.app)
        state = self.portal.call(lifespan.__aenter__) or {}
        self._stack.callback(self.portal.call, lifespan.__aexit__, None, None, None)
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=_WithLifespanState(self.app, state)),
            base_url="http://testserver",
        )
        self._stack.callback(self.portal.call, self._client.aclose)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request and wait for the response."""

        async def send() -> httpx.Response:
            return await self._client.request(method, url, **kwargs)

        return self.portal.call(send)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """GET."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """POST."""
        return self.request("POST", url, **kwargs)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the standard error body (``{"error": {...}, "request_id"}``); return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    return body


wait_until = wait_for  # the test tree's one poller, under the name the serve tests import


def metric_value(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """The value of one sample in Prometheus text format (0.0 when absent)."""
    wanted = labels or {}
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        metric, _, label_text = sample.partition("{")
        if metric != name:
            continue
        found = dict(
            part.split("=", 1) for part in label_text.rstrip("}").split(",") if "=" in part
        )
        found = {k: v.strip('"') for k, v in found.items()}
        if all(found.get(k) == v for k, v in wanted.items()):
            return float(value)
    return 0.0


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    """Split ``data`` into ``size``-byte pieces (a chunked request body)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def publish_custom_artifact(
    root: Path,
    *,
    model_name: str,
    frame: pd.DataFrame,
    target: pd.Series,
    pipeline: Any,
    feature_specs: list[dict[str, Any]],
    task: str,
) -> str:
    """Fit ``pipeline`` and publish it per docs/artifact.md (for non-iris shapes)."""
    pipeline.fit(frame, target)
    directory = dump_model(root, model_name, new_version(), pipeline)
    classes = [str(c) for c in pipeline.classes_] if task == "classification" else None
    metadata = artifact_metadata(
        directory,
        trainer_class="Custom",
        task=task,
        frame=frame,
        feature_specs=feature_specs,
        target=target,
        classes=classes,
        metrics=one_candidate_metrics(
            "score", {}, name="only", estimator="x", params={}, cv_mean=1.0
        ),
        source="test",
        fingerprint=hashlib.sha256(b"test").hexdigest(),
        onnx={"path": None, "reason": "test"},
    )
    return publish(root, directory, metadata).model_version


class ContrarianClassifier(ClassifierMixin, BaseEstimator):
    """predict() always answers the last class while predict_proba() favours the first:
    a stand-in for estimators (e.g. SVC with Platt scaling) whose labels are not the argmax."""

    def fit(self, x: Any, y: Any) -> ContrarianClassifier:
        """Remember the classes."""
        self.classes_ = np.unique(np.asarray(y))
        return self

    def predict(self, x: Any) -> np.ndarray:
        """Always the last class."""
        return np.repeat(self.classes_[-1], len(x))

    def predict_proba(self, x: Any) -> np.ndarray:
        """Most mass on the first class."""
        proba = np.full((len(x), len(self.classes_)), 0.1 / (len(self.classes_) - 1))
        proba[:, 0] = 0.9
        return proba
