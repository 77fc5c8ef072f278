"""The request time limit: 504 when the answer has not started in time, and only then."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from src.serve.app import create_app
from src.serve.errors import RequestTimeoutError
from src.serve.middleware.time_limit import TimeLimitMiddleware
from tests.unit_tests.serve.hardening_support import (
    build_signed,
    captured_logs,
    hang_backend,
    signed_settings,
)
from tests.unit_tests.serve.helpers import (
    ADMIN,
    AUTH,
    IRIS_ROW,
    AppClient,
    assert_error,
    metric_value,
)

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]


def test_a_predict_that_hangs_is_answered_504(artifacts: Path) -> None:
    build_signed(artifacts)
    settings = signed_settings(artifacts, request_timeout_seconds=0.3)
    with AppClient(create_app(settings)) as client, captured_logs() as logs:
        done = hang_backend(client, 2.0)
        started = time.monotonic()
        r = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        elapsed = time.monotonic() - started
        body = assert_error(r, 504, "request_timeout")
        assert "REQUEST_TIMEOUT_SECONDS" in body["error"]["message"]
        assert elapsed < 1.5  # not held until the stuck thread returns
        assert r.headers["x-model-version"]
        assert r.headers["x-frame-options"] == "DENY"
        assert client.get("/health").status_code == 200  # the event loop is free
        batch = client.post("/predict/batch", json={"records": [IRIS_ROW]}, headers=AUTH)
        assert_error(batch, 504, "request_timeout")
        text = client.get("/metrics").text
        assert (
            metric_value(text, "serve_http_requests_total", {"route": "/predict", "status": "504"})
            == 1
        )
        done.wait(5)
    assert "request abandoned after 0.3 s" in logs.getvalue()


def test_a_body_that_never_finishes_is_answered_504(artifacts: Path) -> None:
    build_signed(artifacts)
    settings = signed_settings(artifacts, request_timeout_seconds=0.3)

    async def slow_drip() -> AsyncIterator[bytes]:
        yield b'{"sepal_length": 5.1,'
        await _sleep(5)
        yield b"}"

    with AppClient(create_app(settings)) as client:
        started = time.monotonic()
        r = client.post(
            "/predict", content=slow_drip(), headers={**AUTH, "Content-Type": "application/json"}
        )
        assert time.monotonic() - started < 2
        assert_error(r, 504, "request_timeout")


async def _sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


def test_without_a_timeout_slow_predictions_complete(artifacts: Path) -> None:
    build_signed(artifacts)
    with AppClient(create_app(signed_settings(artifacts, request_timeout_seconds=0))) as client:
        hang_backend(client, 0.5)
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200


def test_admin_reload_is_exempt_from_the_timeout(artifacts: Path) -> None:
    build_signed(artifacts)
    settings = signed_settings(artifacts, request_timeout_seconds=0.2)
    with AppClient(create_app(settings)) as client:
        store = client.app.state.serve.store
        original = store.reload

        def slow_reload(**kwargs: Any) -> Any:
            time.sleep(0.5)
            return original(**kwargs)

        store.reload = slow_reload  # type: ignore[method-assign]
        assert client.post("/admin/reload", headers=ADMIN).status_code == 200


def _timeout_scope() -> dict[str, Any]:
    return {"type": "http", "path": "/predict", "method": "POST", "headers": []}


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


def test_the_time_limit_turns_only_its_own_cancellation_into_a_504() -> None:
    async def forever(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(3600)

    async def sent(message: Any) -> None:
        """Unused."""

    async def timed_out() -> None:
        await TimeLimitMiddleware(forever, seconds=0.05)(_timeout_scope(), _no_receive, sent)

    with pytest.raises(RequestTimeoutError):
        asyncio.run(asyncio.wait_for(timed_out(), 5))

    async def shut_down() -> bool:
        task = asyncio.create_task(
            TimeLimitMiddleware(forever, seconds=30)(_timeout_scope(), _no_receive, sent)
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
    messages: list[Any] = []

    async def slow_body(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.15)  # past the deadline, but the answer has started
        await send({"type": "http.response.body", "body": b"done"})

    async def collect(message: Any) -> None:
        messages.append(message)

    async def scenario() -> int:
        await TimeLimitMiddleware(slow_body, seconds=0.05)(_timeout_scope(), _no_receive, collect)
        return asyncio.current_task().cancelling()  # type: ignore[union-attr]

    assert asyncio.run(scenario()) == 0
    assert messages[-1]["body"] == b"done"
