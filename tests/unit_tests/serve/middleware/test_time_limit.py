"""The request time limit: 504 when the answer has not started in time, and only then."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request

from src.serve.app import create_app
from src.serve.errors import RequestTimeoutError
from src.serve.middleware.time_limit import EVENT_LOOP_KEY, TimeLimit, lifespan_state
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


def _scope(path: str = "/predict") -> dict[str, Any]:
    return {"type": "http", "path": path, "method": "POST", "headers": []}


def test_only_the_deadlines_own_cancellation_becomes_a_504() -> None:
    async def timed_out() -> RequestTimeoutError | None:
        deadline = TimeLimit(0.05).start(_scope())
        assert deadline is not None
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return deadline.timeout_error()
        return None

    error = asyncio.run(asyncio.wait_for(timed_out(), 5))
    assert isinstance(error, RequestTimeoutError)
    assert "0.05 s (REQUEST_TIMEOUT_SECONDS)" in error.message

    async def shut_down() -> RequestTimeoutError | None:
        outcome: list[RequestTimeoutError | None] = []

        async def request() -> None:
            deadline = TimeLimit(30).start(_scope())
            assert deadline is not None
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                outcome.append(deadline.timeout_error())
                raise

        task = asyncio.create_task(request())
        await asyncio.sleep(0.01)
        task.cancel()  # e.g. the server shutting down: must not become a 504
        with pytest.raises(asyncio.CancelledError):
            await task
        return outcome[0]

    assert asyncio.run(shut_down()) is None


def test_an_answer_that_started_in_time_is_not_cut() -> None:
    async def scenario() -> int:
        deadline = TimeLimit(0.05).start(_scope())
        assert deadline is not None
        deadline.answered()  # the response has started
        await asyncio.sleep(0.15)  # past the deadline
        deadline.completed()
        return asyncio.current_task().cancelling()  # type: ignore[union-attr]

    assert asyncio.run(scenario()) == 0


def test_a_swallowed_cancellation_is_taken_back() -> None:
    async def scenario() -> int:
        deadline = TimeLimit(0.02).start(_scope())
        assert deadline is not None
        with contextlib.suppress(asyncio.CancelledError):  # an app that swallows it
            await asyncio.sleep(3600)
        deadline.completed()
        return asyncio.current_task().cancelling()  # type: ignore[union-attr]

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == 0


def test_deadlines_expire_in_arrival_order_with_one_timer() -> None:
    async def scenario() -> list[bool]:
        limit = TimeLimit(0.05)
        expired: list[bool] = []

        async def request(answer_after: float) -> None:
            deadline = limit.start(_scope())
            assert deadline is not None
            try:
                await asyncio.sleep(answer_after)
                deadline.answered()
            except asyncio.CancelledError:
                expired.append(deadline.timeout_error() is not None)
                return
            expired.append(False)

        await asyncio.gather(request(0.01), request(3600), request(0.02), request(3600))
        return sorted(expired)

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == [False, False, True, True]


def test_no_deadline_when_off_or_for_admin_paths() -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        return (
            TimeLimit(0).start(_scope()),
            TimeLimit(5).start(_scope("/admin/reload")),
            TimeLimit(5).start(_scope()),
        )

    off, admin, on = asyncio.run(scenario())
    assert off is None
    assert admin is None
    assert on is not None


async def _time_out_under(state: Any) -> tuple[bool, RequestTimeoutError | None]:
    """Start a 0.05 s deadline for a request whose scope carries ``state``, hang past it:
    (whether the deadline holds this very task, the 504 it then gives)."""
    deadline = TimeLimit(0.05).start({**_scope(), "state": state})
    assert deadline is not None
    own = deadline.task is asyncio.current_task()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        return own, deadline.timeout_error()
    return own, None


def test_the_lifespan_states_loop_finds_the_requests_own_task() -> None:
    async def scenario() -> tuple[bool, RequestTimeoutError | None]:
        return await _time_out_under(lifespan_state())

    own, error = asyncio.run(asyncio.wait_for(scenario(), 5))
    assert own
    assert isinstance(error, RequestTimeoutError)


def test_a_state_naming_another_loop_falls_back_to_the_running_one() -> None:
    other = asyncio.new_event_loop()  # e.g. a lifespan that ran on a loop since stopped
    try:
        own, error = asyncio.run(asyncio.wait_for(_time_out_under({EVENT_LOOP_KEY: other}), 5))
    finally:
        other.close()
    assert own
    assert isinstance(error, RequestTimeoutError)


def test_the_app_hands_its_requests_the_loop_that_serves_them(artifacts: Path) -> None:
    build_signed(artifacts)
    app = create_app(signed_settings(artifacts))
    seen: list[bool] = []

    @app.get("/loop-probe")
    async def probe(request: Request) -> dict[str, bool]:
        seen.append(request.state.event_loop is asyncio.get_running_loop())
        return {}

    with AppClient(app) as client:  # copies the lifespan state into requests, as uvicorn does
        assert client.get("/loop-probe").status_code == 200
    assert seen == [True]
