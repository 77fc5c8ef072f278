"""API-key auth: missing (401), wrong (403), right, admin-only, disabled, metrics."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from unittest import mock

import pytest
from fastapi.security import APIKeyHeader, HTTPBearer
from loguru import logger
from starlette.requests import Request

from src.serve import auth as auth_module
from src.serve.access_log import ACCESS_LOG
from src.serve.app import create_app
from src.serve.auth import Authenticator, presented_key_from_headers
from src.serve.errors import ForbiddenError, UnauthorizedError
from src.serve.metrics import Metrics
from tests.artifact_factory import BuiltArtifact
from tests.unit_tests.serve.helpers import (
    ADMIN,
    ADMIN_KEY,
    API_KEY,
    AUTH,
    IRIS_ROW,
    OTHER_KEY,
    AppClient,
    make_settings,
    metric_value,
)

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]
PROTECTED = [("POST", "/predict"), ("POST", "/predict/batch"), ("GET", "/model")]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_missing_key_is_401_with_www_authenticate(
    client: AppClient, method: str, path: str
) -> None:
    r = client.request(method, path, json=IRIS_ROW)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-key"},
        {"X-API-Key": "wrong-key"},
        {"Authorization": f"Bearer {API_KEY}x"},
        {"Authorization": f"Bearer {API_KEY[:-1]}"},
    ],
)
@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_wrong_key_is_403(client: AppClient, method: str, path: str, headers: dict) -> None:
    r = client.request(method, path, json=IRIS_ROW, headers=headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    assert "www-authenticate" not in r.headers


def test_non_bearer_authorization_counts_as_missing(client: AppClient) -> None:
    r = client.post("/predict", json=IRIS_ROW, headers={"Authorization": f"Basic {API_KEY}"})
    assert r.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {API_KEY}"},
        {"Authorization": f"bearer {OTHER_KEY}"},
        {"X-API-Key": OTHER_KEY},
        {"X-API-Key": ADMIN_KEY},
    ],
)
def test_every_configured_key_works_either_way(client: AppClient, headers: dict) -> None:
    assert client.post("/predict", json=IRIS_ROW, headers=headers).status_code == 200


def test_admin_routes_need_an_admin_key(client: AppClient) -> None:
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers=AUTH).status_code == 403
    assert client.post("/admin/reload", headers=ADMIN).status_code == 200


def test_without_admin_keys_admin_routes_are_always_403(
    artifacts: Path, iris: BuiltArtifact
) -> None:
    settings = make_settings(artifacts, admin_api_keys="")
    with AppClient(create_app(settings)) as client:
        assert client.post("/admin/reload", headers=AUTH).status_code == 403


def test_auth_disabled_opens_everything_and_warns(artifacts: Path, iris: BuiltArtifact) -> None:
    settings = make_settings(artifacts, api_keys="", admin_api_keys="", auth_disabled=True)
    app = create_app(settings)
    sink = io.StringIO()
    handler = logger.add(sink, level="WARNING")
    try:
        with AppClient(app) as client:
            assert client.post("/predict", json=IRIS_ROW).status_code == 200
            assert client.get("/model").status_code == 200
            assert client.post("/admin/reload").status_code == 200
    finally:
        logger.remove(handler)
    assert "AUTH_DISABLED=true" in sink.getvalue()


def test_auth_failures_are_counted_by_reason(client: AppClient) -> None:
    client.post("/predict", json=IRIS_ROW)
    client.post("/predict", json=IRIS_ROW)
    client.post("/predict", json=IRIS_ROW, headers={"X-API-Key": "nope"})
    client.post("/predict", json=IRIS_ROW, headers=AUTH)
    text = client.get("/metrics").text
    assert metric_value(text, "serve_auth_failures_total", {"reason": "missing"}) == 2
    assert metric_value(text, "serve_auth_failures_total", {"reason": "invalid"}) == 1


def test_metrics_are_open_by_default_and_closed_with_metrics_auth(
    artifacts: Path, iris: BuiltArtifact
) -> None:
    with AppClient(create_app(make_settings(artifacts))) as client:
        assert client.get("/metrics").status_code == 200
    with AppClient(create_app(make_settings(artifacts, metrics_auth=True))) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"X-API-Key": "bad"}).status_code == 403
        assert client.get("/metrics", headers=AUTH).status_code == 200


def test_health_and_docs_are_open(client: AppClient) -> None:
    for path in ("/health", "/health/live", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_comparison_is_constant_time_over_every_key() -> None:
    from pydantic import SecretStr

    keys = [SecretStr(f"key-number-{i}") for i in range(5)]
    authenticator = Authenticator(keys, [], disabled=False, metrics=Metrics("test"))
    with mock.patch.object(
        auth_module.hmac, "compare_digest", wraps=auth_module.hmac.compare_digest
    ) as compare:
        authenticator.check("key-number-0")  # matches the first key...
        assert compare.call_count == 5  # ...yet every key is compared (no early exit)
        compare.reset_mock()
        with pytest.raises(ForbiddenError):
            authenticator.check("x")
        assert compare.call_count == 5
    with pytest.raises(UnauthorizedError):
        authenticator.check(None)
    with pytest.raises(UnauthorizedError):
        authenticator.check("")


def test_keys_never_appear_in_logs(artifacts: Path, iris: BuiltArtifact) -> None:
    app = create_app(make_settings(artifacts, log_level="DEBUG"))
    sink = io.StringIO()
    handler = logger.add(sink, level="TRACE", serialize=True)
    ACCESS_LOG.configure(sink, json=True)  # the access lines, into the same sink
    try:
        with AppClient(app) as client:
            client.post("/predict", json=IRIS_ROW, headers=AUTH)
            client.post("/predict", json=IRIS_ROW, headers={"X-API-Key": "wrong-secret-key"})
            client.post("/admin/reload", headers=ADMIN)
    finally:
        ACCESS_LOG.configure(None, json=True)
        logger.remove(handler)
    logs = sink.getvalue()
    assert "POST /predict 200" in logs
    for secret in (API_KEY, OTHER_KEY, ADMIN_KEY, "wrong-secret-key"):
        assert secret not in logs


# --- reading the key from the raw headers ----------------------------------------------------


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
    scope = {"type": "http", "headers": headers, "method": "POST", "path": "/predict"}
    request = Request(scope)

    async def fastapi_view() -> str | None:
        bearer = await HTTPBearer(auto_error=False)(request)
        header_key = await APIKeyHeader(name="X-API-Key", auto_error=False)(request)
        # The documented rule: a well-formed bearer token wins, else X-API-Key.
        if bearer is not None and bearer.credentials:
            return bearer.credentials
        return header_key or None

    assert presented_key_from_headers(headers) == asyncio.run(fastapi_view())
