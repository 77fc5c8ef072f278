"""The request context: version headers on every response, request ids, the body limit,
one JSON log line per request."""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from src.serve.access_log import ACCESS_LOG
from src.serve.app import create_app
from src.serve.middleware.request_context import new_request_id, request_id_from
from src.serve.version import API_VERSION
from tests.artifact_factory import BuiltArtifact
from tests.unit_tests.serve.helpers import ADMIN, AUTH, IRIS_ROW, AppClient, make_settings

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]

EVERY_KIND_OF_RESPONSE = [
    ("GET", "/health", {}, 200),
    ("GET", "/health/live", {}, 200),
    ("POST", "/predict", {"json": IRIS_ROW, "headers": AUTH}, 200),
    ("POST", "/predict/batch", {"json": {"records": [IRIS_ROW]}, "headers": AUTH}, 200),
    ("GET", "/model", {"headers": AUTH}, 200),
    ("POST", "/admin/reload", {"headers": ADMIN}, 200),
    ("GET", "/metrics", {}, 200),
    ("GET", "/openapi.json", {}, 200),
    ("POST", "/predict", {"json": IRIS_ROW}, 401),
    ("POST", "/predict", {"json": IRIS_ROW, "headers": {"X-API-Key": "x"}}, 403),
    ("POST", "/predict", {"json": {}, "headers": AUTH}, 422),
    ("POST", "/predict", {"content": b"x", "headers": {**AUTH, "Content-Type": "text/plain"}}, 415),
    ("GET", "/does-not-exist", {}, 404),
    ("DELETE", "/predict", {}, 405),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), EVERY_KIND_OF_RESPONSE)
def test_every_response_carries_the_three_headers(
    client: AppClient, iris: BuiltArtifact, method: str, path: str, kwargs: dict, status: int
) -> None:
    r = client.request(method, path, **kwargs)
    assert r.status_code == status
    assert len(r.headers["x-request-id"]) == 32
    assert r.headers["x-model-version"] == iris.model_version
    assert r.headers["x-api-version"] == API_VERSION


def test_413_carries_the_headers_too(artifacts: Path, iris: BuiltArtifact) -> None:
    with AppClient(create_app(make_settings(artifacts, max_body_bytes=10))) as client:
        r = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert r.status_code == 413
        assert r.headers["x-model-version"] == iris.model_version
        assert r.headers["x-api-version"] == API_VERSION
        assert r.headers["x-request-id"]


def test_503_carries_the_headers_too(artifacts: Path) -> None:
    with AppClient(create_app(make_settings(artifacts))) as client:
        r = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert r.status_code == 503
        assert r.headers["x-model-version"] == "none"
        assert r.headers["x-api-version"] == API_VERSION
        assert r.headers["x-request-id"]


def test_oversized_body_is_refused_only_after_auth(artifacts: Path, iris: BuiltArtifact) -> None:
    # Anonymous clients learn nothing and make the server read nothing: 401 comes first.
    with AppClient(create_app(make_settings(artifacts, max_body_bytes=10))) as client:
        assert client.post("/predict", json=IRIS_ROW).status_code == 401


def test_a_safe_client_request_id_is_echoed(client: AppClient) -> None:
    rid = "client-123:abc.DEF_9"
    r = client.post("/predict", json=IRIS_ROW, headers={**AUTH, "X-Request-ID": rid})
    assert r.headers["x-request-id"] == rid
    assert r.json()["request_id"] == rid
    err = client.get("/nope", headers={"X-Request-ID": rid})
    assert err.json()["request_id"] == rid


@pytest.mark.parametrize(
    "raw",
    [b"x" * 129, b"has space", b"semi;colon", b"caf\xc3\xa9", b"<script>", b"a" * 10_000],
)
def test_an_unsafe_client_request_id_is_replaced(raw: bytes) -> None:
    rid = request_id_from([(b"x-request-id", raw)])
    assert rid != raw.decode("latin-1")
    assert uuid.UUID(hex=rid).version == 4


def test_request_ids_are_random_uuid4s_never_handed_out_twice() -> None:
    taken: list[list[str]] = [[] for _ in range(4)]

    def take(into: list[str]) -> None:
        into.extend(new_request_id() for _ in range(1_500))  # several blocks each

    threads = [threading.Thread(target=take, args=(ids,)) for ids in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [rid for chunk in taken for rid in chunk]
    assert len(set(ids)) == len(ids) == 6_000
    for rid in ids[::97]:
        parsed = uuid.UUID(hex=rid)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, rid)


def test_a_forked_child_does_not_reuse_its_parents_next_ids() -> None:
    new_request_id()  # the parent holds a block with ids still to hand out
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write_end, new_request_id().encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert uuid.UUID(hex=child_id).version == 4
    assert child_id not in {new_request_id() for _ in range(300)}


def test_unsafe_request_id_over_http_is_never_echoed(client: AppClient) -> None:
    r = client.get("/health", headers={"X-Request-ID": "x" * 500})
    assert r.headers["x-request-id"] != "x" * 500
    assert len(r.headers["x-request-id"]) == 32


def test_the_body_request_id_becomes_the_request_id(client: AppClient) -> None:
    r = client.post(
        "/predict",
        json={**IRIS_ROW, "request_id": "from-body"},
        headers={"X-Request-ID": "hdr", **AUTH},
    )
    assert r.json()["request_id"] == "from-body"
    assert r.headers["x-request-id"] == "from-body"
    batch = client.post(
        "/predict/batch", json={"records": [IRIS_ROW], "request_id": "batch-body"}, headers=AUTH
    )
    assert batch.json()["request_id"] == batch.headers["x-request-id"] == "batch-body"
    # without one in the body, the header's id stays
    r = client.post("/predict", json=IRIS_ROW, headers={"X-Request-ID": "hdr", **AUTH})
    assert r.json()["request_id"] == r.headers["x-request-id"] == "hdr"


def test_an_invalid_body_request_id_is_refused_and_not_adopted(client: AppClient) -> None:
    r = client.post(
        "/predict",
        json={**IRIS_ROW, "request_id": "has spaces\nand a newline"},
        headers={"X-Request-ID": "hdr", **AUTH},
    )
    assert r.status_code == 422
    assert r.headers["x-request-id"] == "hdr"
    assert r.json()["request_id"] == "hdr"


def stderr_entries(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The JSON lines the app wrote to stderr (its access lines flushed first)."""
    ACCESS_LOG.flush()
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_the_access_log_names_the_body_request_id(
    artifacts: Path, iris: BuiltArtifact, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(artifacts, log_json=True))
    with AppClient(app) as client:
        body = {**IRIS_ROW, "request_id": "client-chose-this"}
        client.post("/predict", json=body, headers={**AUTH, "X-Request-ID": "hdr"})
    lines = stderr_entries(capsys)
    (access,) = [entry for entry in lines if entry.get("route") == "/predict"]
    assert access["request_id"] == "client-chose-this"


def test_one_json_log_line_per_request_with_request_id(
    artifacts: Path, iris: BuiltArtifact, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(artifacts, log_json=True))
    with AppClient(app) as client:
        client.post("/predict", json=IRIS_ROW, headers={**AUTH, "X-Request-ID": "trace-me"})
        client.get("/nope/../../etc/passwd", headers={"X-Request-ID": "trace-404"})
    access = [entry for entry in stderr_entries(capsys) if entry.get("route")]
    assert len(access) == 2
    first, second = access
    assert first["request_id"] == "trace-me"
    assert (first["method"], first["route"], first["status"]) == ("POST", "/predict", 200)
    assert first["model_version"] == iris.model_version
    assert first["latency_ms"] >= 0
    assert first["level"] == "INFO"
    assert first["message"].startswith("POST /predict 200")
    assert (second["request_id"], second["route"], second["status"]) == (
        "trace-404",
        "<unmatched>",
        404,
    )
    assert "etc/passwd" not in json.dumps(second)  # raw paths are not logged
