"""The two adapters of the data plane - the lean ASGI path and the FastAPI routes - answer
exactly alike, with micro-batching off and on, and both announce single rows to the batcher;
the hot path's cost decisions (inline calls, uvicorn log level) hold."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from src.serve import app as app_module
from src.serve.app import create_app
from src.serve.backends.base import Prediction, Row
from src.serve.batching import BatchMetrics, MicroBatcher
from src.serve.hooks import HookRegistry
from src.serve.http_protocol import COALESCING_PROTOCOL
from src.serve.lean_predict import LeanPredict
from src.serve.loaded_model import LoadedModel
from src.serve.serve_app import ServeApp
from tests.artifact_factory import BuiltArtifact, build_iris_artifact
from tests.unit_tests.serve.helpers import API_KEY, AUTH, IRIS_ROW, AppClient, make_settings

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")
BAD_KEY = {"Authorization": "Bearer not-a-key-of-this-server"}
JSON = {"Content-Type": "application/json"}
VOLATILE_HEADERS = {"x-request-id", "date"}

# (method, path, headers, body) - every way a prediction request can go right or wrong.
CASES: list[tuple[str, dict[str, str], Any]] = [
    ("/predict", AUTH, IRIS_ROW),
    ("/predict", AUTH, {**IRIS_ROW, "request_id": "client-7"}),
    ("/predict", {"X-API-Key": API_KEY}, IRIS_ROW),
    ("/predict", {"Authorization": f"bearer   {API_KEY}  "}, IRIS_ROW),
    ("/predict", {"Authorization": f"Basic {API_KEY}", "X-API-Key": API_KEY}, IRIS_ROW),
    ("/predict", {"Authorization": f"Basic {API_KEY}"}, IRIS_ROW),
    ("/predict", {"Authorization": "Bearer"}, IRIS_ROW),
    ("/predict", {}, IRIS_ROW),
    ("/predict", BAD_KEY, IRIS_ROW),
    ("/predict", BAD_KEY, b"not json"),
    ("/predict", AUTH, b"not json"),
    ("/predict", AUTH, b"   "),
    ("/predict", AUTH, b""),
    ("/predict", {**AUTH, "Content-Type": "text/plain"}, IRIS_ROW),
    ("/predict", {**AUTH, "Content-Type": "application/merge-patch+json"}, IRIS_ROW),
    ("/predict", AUTH, {k: v for k, v in IRIS_ROW.items() if k != "petal_width"}),
    ("/predict", AUTH, {**IRIS_ROW, "colour": "red"}),
    ("/predict", AUTH, {**IRIS_ROW, "sepal_length": "5.1"}),
    ("/predict", AUTH, {**IRIS_ROW, "sepal_length": True}),
    (
        "/predict",
        AUTH,
        b'{"sepal_length": 1e400, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}',
    ),
    ("/predict", AUTH, b'{"sepal_length": NaN, "sepal_width": 3.5}'),
    ("/predict", AUTH, {**IRIS_ROW, "sepal_length": 5}),
    ("/predict", AUTH, {**IRIS_ROW, "request_id": "bad id with spaces"}),
    ("/predict", AUTH, [IRIS_ROW]),
    ("/predict", AUTH, "just a string"),
    ("/predict", {**AUTH, "Content-Length": "99999999"}, IRIS_ROW),
    ("/predict/batch", AUTH, {"records": [IRIS_ROW, IRIS_ROW]}),
    ("/predict/batch", AUTH, {"records": [IRIS_ROW], "request_id": "batch-1"}),
    ("/predict/batch", AUTH, {"records": []}),
    ("/predict/batch", AUTH, {"records": [IRIS_ROW, {**IRIS_ROW, "petal_width": None}]}),
    ("/predict/batch", AUTH, {"records": [IRIS_ROW] * 11}),
    ("/predict/batch", AUTH, {"rows": [IRIS_ROW]}),
    ("/predict/batch", AUTH, IRIS_ROW),
    ("/predict/batch", {}, {"records": [IRIS_ROW]}),
]


def _send(client: AppClient, path: str, headers: dict[str, str], body: Any) -> Any:
    if isinstance(body, bytes):
        return client.post(path, content=body, headers={**JSON, **headers})
    return client.post(path, json=body, headers=headers)


def _comparable(response: Any) -> tuple[int, dict[str, str], Any]:
    body = response.json()
    if isinstance(body, dict) and body.get("request_id") == response.headers["x-request-id"]:
        body["request_id"] = "<server id>"
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE_HEADERS}
    return response.status_code, headers, body


@pytest.fixture(params=[1, 8], ids=["batching-off", "batching-on"])
def two_apps(
    request: pytest.FixtureRequest,
    clean_env: pytest.MonkeyPatch,
    artifacts: Path,
    iris: BuiltArtifact,
) -> Iterator[tuple[AppClient, AppClient]]:
    """The same service twice: with the lean adapter, and with it switched off (FastAPI's
    routes answer); micro-batching off (BATCH_MAX_SIZE=1) and on (8)."""
    settings = make_settings(
        artifacts, max_batch_rows=10, max_body_bytes=4096, batch_max_size=request.param
    )
    lean_app = create_app(settings)
    router_app = create_app(settings)
    router_app.lean_predict = None  # type: ignore[attr-defined]
    with AppClient(lean_app) as lean, AppClient(router_app) as router:
        assert isinstance(lean.app.state.serve.inference, MicroBatcher) == (request.param > 1)
        yield lean, router


@pytest.mark.parametrize(("path", "headers", "body"), CASES)
def test_lean_path_answers_exactly_like_the_fastapi_routes(
    two_apps: tuple[AppClient, AppClient], path: str, headers: dict[str, str], body: Any
) -> None:
    lean, router = two_apps
    assert _comparable(_send(lean, path, headers, body)) == _comparable(
        _send(router, path, headers, body)
    )


def test_both_paths_count_and_label_requests_the_same(
    two_apps: tuple[AppClient, AppClient],
) -> None:
    texts = []
    for client in two_apps:
        for path, headers, body in CASES:
            _send(client, path, headers, body)
        texts.append(client.get("/metrics").text)
    lean, router = ([line for line in text.splitlines() if _is_count(line)] for text in texts)
    assert lean == router
    assert any('route="/predict",status="200"' in line for line in lean)


def _is_count(line: str) -> bool:
    return line.startswith(
        ("serve_http_requests_total", "serve_predictions_total", "serve_auth_failures_total")
    )


def test_lean_path_really_serves_predictions(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    app = create_app(make_settings(artifacts))
    assert isinstance(app, ServeApp)
    assert isinstance(app.lean_predict, LeanPredict)
    calls = []
    route, original = app.lean_predict.routes["/predict"]

    async def spy(*args: Any) -> bytes:
        calls.append(args)
        return await original(*args)

    app.lean_predict.routes["/predict"] = (route, spy)
    with AppClient(app) as client:
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200
        assert client.get("/predict", headers=AUTH).status_code == 405  # the router's answer
        assert client.post("/predict/", json=IRIS_ROW, headers=AUTH).status_code in (307, 404)
        assert "/predict" in client.get("/openapi.json").json()["paths"]
    assert len(calls) == 1


def test_lean_path_answers_503_without_a_model(
    clean_env: pytest.MonkeyPatch, artifacts: Path
) -> None:
    with AppClient(create_app(make_settings(artifacts))) as client:
        response = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_not_ready"
        assert response.headers["x-model-version"] == "none"


# --- announcing single rows to the micro-batcher ------------------------------------------------


class RecordingBatcher(MicroBatcher):
    """The micro-batcher, noting announcements and inference calls in order."""

    def __init__(self, hooks: HookRegistry) -> None:
        super().__init__(
            hooks, max_size=8, max_wait_seconds=0.002, metrics=BatchMetrics(CollectorRegistry())
        )
        self.events: list[Any] = []

    def row_arriving(self) -> None:
        self.events.append("arriving")
        super().row_arriving()

    def row_arrived(self) -> None:
        self.events.append("arrived")
        super().row_arrived()

    async def infer(self, model: LoadedModel, rows: Sequence[Row]) -> list[Prediction]:
        self.events.append(("infer", len(rows)))
        return await super().infer(model, rows)


@pytest.mark.parametrize("adapter", ["lean", "fastapi"])
def test_both_adapters_announce_a_single_row_to_the_batcher(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact, adapter: str
) -> None:
    app = create_app(make_settings(artifacts, batch_max_size=8), inference_factory=RecordingBatcher)
    if adapter == "fastapi":
        app.lean_predict = None  # type: ignore[attr-defined]
    with AppClient(app) as client:
        batcher = client.app.state.serve.inference
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200
        assert batcher.events == ["arriving", "arrived", ("infer", 1)]
        batcher.events.clear()
        # A refused row is announced too, and its announcement withdrawn.
        assert client.post("/predict", json={}, headers=AUTH).status_code == 422
        assert client.post("/predict", json=IRIS_ROW).status_code == 401
        assert batcher.events == ["arriving", "arrived"] * 2
        batcher.events.clear()
        # A batch request is not a single row: nothing to announce.
        body = {"records": [IRIS_ROW, IRIS_ROW]}
        assert client.post("/predict/batch", json=body, headers=AUTH).status_code == 200
        assert batcher.events == [("infer", 2)]


# --- inline calls -------------------------------------------------------------------------------


def test_fast_backends_run_inline_and_slow_ones_in_the_thread_pool(
    clean_env: pytest.MonkeyPatch, artifacts: Path
) -> None:
    build_iris_artifact(artifacts, with_onnx=True)
    threads: list[int] = []

    class ThreadRecorder:
        def on_model_loaded(self, model: Any, previous: Any) -> None:
            """Unused."""

        def on_predictions(self, model: Any, rows: Any, predictions: Any) -> None:
            threads.append(threading.get_ident())

    app = create_app(make_settings(artifacts))  # ONNX: ~10 us per call
    app.state.serve.hooks.add(ThreadRecorder())
    with AppClient(app) as client:
        model = app.state.serve.store.current
        assert model.backend.name == "onnx"
        assert model.inline_max_rows >= 1
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200
        big = {"records": [IRIS_ROW] * (model.inline_max_rows + 1)}
        assert client.post("/predict/batch", json=big, headers=AUTH).status_code == 200
        loop_thread = client.portal.call(lambda: threading.get_ident())
    assert threads[0] == loop_thread  # one row: on the event loop
    assert threads[1] != loop_thread  # over the limit: in the thread pool


def test_slow_backends_never_run_inline(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    from src.serve.backends import timing

    clean_env.setattr(timing, "INLINE_BUDGET_SECONDS", 0.0)
    clean_env.setattr(timing.inline_row_limit, "__defaults__", (0.0,))
    with AppClient(create_app(make_settings(artifacts))) as client:
        assert client.app.state.serve.store.current.inline_max_rows == 0


# --- uvicorn options ----------------------------------------------------------------------------


def test_uvicorn_runs_at_the_service_log_level(
    clean_env: pytest.MonkeyPatch, artifacts: Path
) -> None:
    captured: dict[str, Any] = {}
    clean_env.setattr(app_module.uvicorn, "run", lambda app, **options: captured.update(options))
    clean_env.setenv("API_KEYS", API_KEY)
    clean_env.setenv("ARTIFACTS_DIR", str(artifacts))
    assert app_module.main() == 0
    # Not TRACE: uvicorn would wrap the app in its per-message logger (costly, noisy).
    assert captured["log_level"] == "info"
    assert captured["loop"] == "auto"
    assert captured["http"] == COALESCING_PROTOCOL  # httptools, one write per response
    clean_env.setenv("LOG_LEVEL", "success")
    app_module.main()
    assert captured["log_level"] == "info"
