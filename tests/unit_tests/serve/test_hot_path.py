"""The lean POST /predict(/batch) path answers exactly as the FastAPI routes do, and the hot
path's cost decisions (inline calls, uvicorn log level) hold."""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.requests import Request

from src.serve import app as app_module
from src.serve.app import create_app
from src.serve.artifact import resolve
from src.serve.auth import presented_key
from src.serve.errors import ServeError
from src.serve.fast_path import LeanPredict, ServeApp, presented_key_from_headers
from src.serve.loaded_model import build_loaded_model
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


@pytest.fixture
def two_apps(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> Iterator[tuple[AppClient, AppClient]]:
    """The same service twice: with the lean path, and with it switched off."""
    settings = make_settings(artifacts, max_batch_rows=10, max_body_bytes=4096)
    lean_app = create_app(settings)
    router_app = create_app(settings)
    router_app.lean_predict = None  # type: ignore[attr-defined]
    with AppClient(lean_app) as lean, AppClient(router_app) as router:
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
    original = app.lean_predict._predict

    async def spy(*args: Any) -> bytes:
        calls.append(args)
        return await original(*args)

    app.lean_predict._handlers["/predict"] = spy
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


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"authorization", b"Bearer k1")],
        [(b"authorization", b"bearer  k1 ")],
        [(b"authorization", b"BEARER k1")],
        [(b"authorization", b"Bearer")],
        [(b"authorization", b"Bearer ")],
        [(b"authorization", b"Token k1"), (b"x-api-key", b"k2")],
        [(b"authorization", b"Bearer k1"), (b"x-api-key", b"k2")],
        [(b"x-api-key", b"k2")],
        [(b"x-api-key", b"")],
        [(b"x-api-key", b"k2"), (b"x-api-key", b"k3")],
        [(b"authorization", b"Bearer k1"), (b"authorization", b"Bearer k9")],
        [(b"authorization", b"Bearer caf\xe9")],
    ],
)
def test_key_parsing_matches_fastapi_security_schemes(headers: list[tuple[bytes, bytes]]) -> None:
    import asyncio

    scope = {"type": "http", "headers": headers, "method": "POST", "path": "/predict"}
    request = Request(scope)

    async def fastapi_view() -> str | None:
        bearer = await HTTPBearer(auto_error=False)(request)
        header_key = await APIKeyHeader(name="X-API-Key", auto_error=False)(request)
        return presented_key(bearer, header_key)

    assert presented_key_from_headers(headers) == asyncio.run(fastapi_view())


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
    assert captured["http"] == "auto"
    clean_env.setenv("LOG_LEVEL", "success")
    app_module.main()
    assert captured["log_level"] == "info"


# --- bulk validation of numeric batches ---------------------------------------------------------


def _batch_bodies() -> list[Any]:
    base = dict(IRIS_ROW)
    missing = {k: v for k, v in base.items() if k != "petal_width"}
    bodies: list[Any] = [
        {"records": [base] * 3},
        {"records": [base, {**base, "sepal_length": 5}]},
        {"records": [{**base, "sepal_length": 2**53 + 1}]},  # rounds to 2**53: accepted
        {"records": [{**base, "sepal_length": 2**53 + 3}]},  # rounds above the bound
        {"records": [{**base, "sepal_length": 10**400}]},
        {"records": [{**base, "sepal_length": 1e308}]},
        {"records": [{**base, "sepal_length": -(2.0**53)}]},
        {"records": [{**base, "sepal_length": True}]},
        {"records": [{**base, "sepal_length": "5"}]},
        {"records": [{**base, "sepal_length": None}]},
        {"records": [{**base, "sepal_length": [1.0]}]},
        {"records": [{**base, "extra": 1.0}]},
        {"records": [missing]},
        {"records": [{**missing, "extra": 1.0}]},  # as many keys, one of them wrong
        {"records": []},
        {"records": [base] * 11},
        {"records": [base], "request_id": "ok-1.2:3"},
        {"records": [base], "request_id": "bad id"},
        {"records": [base], "request_id": "abc\n"},
        {"records": [base], "request_id": "x" * 129},
        {"records": [base], "request_id": 5},
        {"records": [base], "request_id": None},
        {"records": [base], "other": 1},
        {"records": [[5.1, 3.5, 1.4, 0.2]]},
        {"records": [base, 5]},
        {"records": "x"},
        {"request_id": "only-an-id"},
        [base],
        "text",
    ]
    rng = random.Random(0)
    choices: list[Any] = [0.5, -3.25, 7, 0, True, None, "1", 2**60, 1e300, -0.0]
    for _ in range(200):
        records = [
            {name: rng.choice(choices) if rng.random() < 0.2 else rng.random() for name in base}
            for _ in range(rng.randint(1, 4))
        ]
        bodies.append({"records": records})
    return bodies


def _outcome(schemas: Any, body: Any) -> Any:
    try:
        rows, request_id = schemas.parse_batch(body, 10)
    except ServeError as exc:
        return (type(exc), exc.status_code, exc.message, exc.details)
    return [[(type(v), v) for v in row] for row in rows], request_id


def test_bulk_batch_validation_accepts_and_refuses_exactly_what_pydantic_does(
    artifacts: Path, iris: BuiltArtifact
) -> None:
    settings = make_settings(artifacts, max_batch_rows=10)
    schemas = build_loaded_model(resolve(artifacts, "iris_classifier"), settings).schemas
    assert schemas.numeric_names == tuple(IRIS_ROW)
    pydantic_only = dataclasses.replace(schemas, numeric_names=None)
    bulk_answers = 0
    for body in _batch_bodies():
        expected = _outcome(pydantic_only, body)
        assert _outcome(schemas, body) == expected, body
        bulk_answers += schemas._parse_numeric_batch(body, 10) is not None
    assert bulk_answers >= 10  # the bulk path really answered the ordinary bodies


# --- the request time limit (a timer per request, not a cancel scope) ---------------------------


def _timeout_scope() -> dict[str, Any]:
    return {"type": "http", "path": "/predict", "method": "POST", "headers": []}


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


def test_the_time_limit_turns_only_its_own_cancellation_into_a_504() -> None:
    import asyncio

    from src.serve.errors import RequestTimeoutError
    from src.serve.guards import TimeoutMiddleware

    async def forever(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(3600)

    async def sent(message: Any) -> None:
        """Unused."""

    async def timed_out() -> None:
        await TimeoutMiddleware(forever, seconds=0.05)(_timeout_scope(), _no_receive, sent)

    with pytest.raises(RequestTimeoutError):
        asyncio.run(asyncio.wait_for(timed_out(), 5))

    async def shut_down() -> bool:
        task = asyncio.create_task(
            TimeoutMiddleware(forever, seconds=30)(_timeout_scope(), _no_receive, sent)
        )
        await asyncio.sleep(0.01)
        task.cancel()  # e.g. the server shutting down: must not become a 504
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(shut_down())


def test_a_response_that_started_in_time_is_not_cut() -> None:
    import asyncio

    from src.serve.guards import TimeoutMiddleware

    messages: list[Any] = []

    async def slow_body(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.15)  # past the deadline, but the answer has started
        await send({"type": "http.response.body", "body": b"done"})

    async def collect(message: Any) -> None:
        messages.append(message)

    async def scenario() -> int:
        await TimeoutMiddleware(slow_body, seconds=0.05)(_timeout_scope(), _no_receive, collect)
        return asyncio.current_task().cancelling()  # type: ignore[union-attr]

    assert asyncio.run(scenario()) == 0
    assert messages[-1]["body"] == b"done"
