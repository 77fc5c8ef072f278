"""The bad-input table: each row is one request a client could send, answered with a
documented status and the JSON error body, and the service is healthy afterwards.

Decisions (the service is strict: it never guesses what a client meant):
* a body that is not JSON, or JSON with NaN/Infinity/1e309 (not JSON numbers), or nested past
  the parser's depth limit -> 422 ``invalid_json``;
* JSON that is not an object, missing/extra fields, wrong types, numbers as strings, booleans
  or null for numbers, over-long strings -> 422 ``invalid_input`` naming the field;
* a body over ``MAX_BODY_BYTES`` -> 413 whether or not it declares its length (chunked);
  a batch over ``MAX_BATCH_ROWS`` -> 413 ``too_many_rows``; an empty batch -> 422;
* a body declared as anything but JSON -> 415;
* an unusable ``X-Request-ID`` (huge, newlines, non-ASCII) is not an error: it is replaced by a
  fresh id, never echoed into headers or logs.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from src.serve.app import create_app
from src.serve.backends.base import Prediction
from tests.unit_tests.serve.hardening_support import captured_logs, signed_service_settings
from tests.unit_tests.serve.helpers import (
    AUTH,
    IRIS_ROW,
    AppClient,
    chunks,
)

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

MAX_BODY_BYTES = 4096
MAX_BATCH_ROWS = 20
JSON = {**AUTH, "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppClient]:
    """One signed, ready service for the whole table (rows are independent requests)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    with (
        signed_service_settings(
            root, max_body_bytes=MAX_BODY_BYTES, max_batch_rows=MAX_BATCH_ROWS
        ) as settings,
        AppClient(create_app(settings)) as running,
    ):
        yield running


def _raw(record: dict[str, Any], field: str, literal: bytes) -> bytes:
    """``record`` as JSON with ``field``'s value replaced by a raw JSON literal."""
    return orjson.dumps({**record, field: 0}).replace(
        f'"{field}":0'.encode(), f'"{field}":'.encode() + literal
    )


def _nested(depth: int) -> Any:
    value: Any = 1.0
    for _ in range(depth):
        value = [value]
    return value


async def _chunked(data: bytes) -> AsyncIterator[bytes]:
    for piece in chunks(data, 512):
        yield piece


ROW = IRIS_ROW
BIG = b"{" + b" " * (MAX_BODY_BYTES + 1) + b"}"
# (id, path, request kwargs, status, error code)
TABLE: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("invalid-json", "/predict", {"content": b"{not json", "headers": JSON}, 422, "invalid_json"),
    ("empty-body", "/predict", {"content": b"", "headers": JSON}, 422, "invalid_json"),
    ("whitespace-body", "/predict", {"content": b" \n\t ", "headers": JSON}, 422, "invalid_json"),
    ("truncated-json", "/predict", {"content": orjson.dumps(ROW)[:-1], "headers": JSON}, 422,
     "invalid_json"),
    ("invalid-utf8", "/predict", {"content": b'{"sepal_length": "\xff\xfe"}', "headers": JSON},
     422, "invalid_json"),
    ("json-array", "/predict", {"content": b"[5.1, 3.5, 1.4, 0.2]", "headers": JSON}, 422,
     "invalid_input"),
    ("json-string", "/predict", {"content": b'"sepal_length=5.1"', "headers": JSON}, 422,
     "invalid_input"),
    ("json-number", "/predict", {"content": b"42", "headers": JSON}, 422, "invalid_input"),
    ("json-null", "/predict", {"content": b"null", "headers": JSON}, 422, "invalid_input"),
    ("json-true", "/predict", {"content": b"true", "headers": JSON}, 422, "invalid_input"),
    ("empty-object", "/predict", {"json": {}, "headers": AUTH}, 422, "invalid_input"),
    ("missing-field", "/predict",
     {"json": {k: v for k, v in ROW.items() if k != "petal_width"}, "headers": AUTH}, 422,
     "invalid_input"),
    ("extra-field", "/predict", {"json": {**ROW, "colour": "blue"}, "headers": AUTH}, 422,
     "invalid_input"),
    ("object-for-number", "/predict", {"json": {**ROW, "sepal_length": {"v": 5.1}},
     "headers": AUTH}, 422, "invalid_input"),
    ("list-for-number", "/predict", {"json": {**ROW, "sepal_length": [5.1]}, "headers": AUTH},
     422, "invalid_input"),
    ("nan", "/predict", {"content": _raw(ROW, "petal_width", b"NaN"), "headers": JSON}, 422,
     "invalid_json"),
    ("infinity", "/predict", {"content": _raw(ROW, "petal_width", b"Infinity"),
     "headers": JSON}, 422, "invalid_json"),
    ("minus-infinity", "/predict", {"content": _raw(ROW, "petal_width", b"-Infinity"),
     "headers": JSON}, 422, "invalid_json"),
    ("1e309", "/predict", {"content": _raw(ROW, "petal_width", b"1e309"), "headers": JSON},
     422, "invalid_json"),
    ("number-over-the-bound", "/predict", {"json": {**ROW, "sepal_length": 2.0**53 * 2},
     "headers": AUTH}, 422, "invalid_input"),
    ("1e308", "/predict", {"content": _raw(ROW, "petal_width", b"-1e308"), "headers": JSON},
     422, "invalid_input"),
    ("number-as-string", "/predict", {"json": {**ROW, "sepal_length": "5.1"}, "headers": AUTH},
     422, "invalid_input"),
    ("nan-as-string", "/predict", {"json": {**ROW, "sepal_length": "NaN"}, "headers": AUTH},
     422, "invalid_input"),
    ("boolean-for-number", "/predict", {"json": {**ROW, "sepal_length": True}, "headers": AUTH},
     422, "invalid_input"),
    ("null-for-number", "/predict", {"json": {**ROW, "sepal_length": None}, "headers": AUTH},
     422, "invalid_input"),
    ("very-long-string", "/predict", {"json": {**ROW, "sepal_length": "9" * 3000},
     "headers": AUTH}, 422, "invalid_input"),
    ("very-long-field-name", "/predict", {"json": {**ROW, "x" * 3000: 1.0}, "headers": AUTH},
     422, "invalid_input"),
    ("nested-in-a-field", "/predict", {"json": {**ROW, "sepal_length": _nested(300)},
     "headers": AUTH}, 422, "invalid_input"),
    ("nested-past-parser-limit", "/predict",
     {"content": b"[" * 2000 + b"]" * 2000, "headers": JSON}, 422, "invalid_json"),
    ("non-ascii-value", "/predict", {"json": {**ROW, "sepal_length": "cinq virgule un é"},
     "headers": AUTH}, 422, "invalid_input"),
    ("non-ascii-field-name", "/predict", {"json": {**ROW, "pétale_📏": 1.0}, "headers": AUTH},
     422, "invalid_input"),
    ("control-chars-in-field-name", "/predict",
     {"json": {**ROW, "a\u0000b\u001b[31m\r\n": 1.0}, "headers": AUTH}, 422, "invalid_input"),
    ("control-chars-in-value", "/predict", {"json": {**ROW, "sepal_length": "\u0000\u0007"},
     "headers": AUTH}, 422, "invalid_input"),
    ("request-id-with-newline", "/predict",
     {"json": {**ROW, "request_id": "a\nFAKE LOG LINE"}, "headers": AUTH}, 422, "invalid_input"),
    ("request-id-huge", "/predict", {"json": {**ROW, "request_id": "r" * 1000},
     "headers": AUTH}, 422, "invalid_input"),
    ("request-id-not-a-string", "/predict", {"json": {**ROW, "request_id": 7}, "headers": AUTH},
     422, "invalid_input"),
    ("body-over-limit-with-length", "/predict", {"content": BIG, "headers": JSON}, 413,
     "payload_too_large"),
    ("body-over-limit-chunked", "/predict", {"content": "chunked", "headers": JSON}, 413,
     "payload_too_large"),
    ("content-type-text", "/predict", {"content": orjson.dumps(ROW),
     "headers": {**AUTH, "Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
    ("content-type-form", "/predict", {"data": {"sepal_length": "5.1"}, "headers": AUTH}, 415,
     "unsupported_media_type"),
    ("content-type-xml", "/predict", {"content": b"<record/>",
     "headers": {**AUTH, "Content-Type": "application/xml"}}, 415, "unsupported_media_type"),
    ("content-type-garbage", "/predict", {"content": orjson.dumps(ROW),
     "headers": {**AUTH, "Content-Type": b"\xe9/\xe9" * 100}}, 415, "unsupported_media_type"),
    ("batch-max-rows-plus-one", "/predict/batch",
     {"json": {"records": [ROW] * (MAX_BATCH_ROWS + 1)}, "headers": AUTH}, 413, "too_many_rows"),
    ("batch-empty", "/predict/batch", {"json": {"records": []}, "headers": AUTH}, 422,
     "invalid_input"),
    ("batch-records-not-a-list", "/predict/batch", {"json": {"records": ROW}, "headers": AUTH},
     422, "invalid_input"),
    ("batch-missing-records", "/predict/batch", {"json": {}, "headers": AUTH}, 422,
     "invalid_input"),
    ("batch-one-bad-row", "/predict/batch",
     {"json": {"records": [ROW, {**ROW, "petal_length": "x"}]}, "headers": AUTH}, 422,
     "invalid_input"),
    ("batch-row-not-an-object", "/predict/batch", {"json": {"records": [ROW, 5]},
     "headers": AUTH}, 422, "invalid_input"),
    ("batch-as-array", "/predict/batch", {"json": [ROW], "headers": AUTH}, 422, "invalid_input"),
    ("no-api-key", "/predict", {"json": ROW}, 401, "unauthorized"),
    ("empty-bearer", "/predict", {"json": ROW, "headers": {"Authorization": "Bearer "}}, 401,
     "unauthorized"),
    ("basic-auth-instead", "/predict", {"json": ROW,
     "headers": {"Authorization": "Basic dXNlcjpwYXNz"}}, 401, "unauthorized"),
    ("wrong-api-key", "/predict", {"json": ROW, "headers": {"X-API-Key": "not-the-key"}}, 403,
     "forbidden"),
    ("huge-api-key", "/predict", {"json": ROW, "headers": {"X-API-Key": "k" * 8000}}, 403,
     "forbidden"),
]  # fmt: skip


def _assert_documented_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) <= {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    assert "Error'" not in response.text
    assert "Exception" not in response.text
    assert len(response.content) < 8192  # never echoes a big input back
    return body


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "code"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_bad_input_row(
    client: AppClient, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    kwargs = dict(kwargs)
    if kwargs.get("content") == "chunked":
        kwargs["content"] = _chunked(BIG)
    r = client.post(path, **kwargs)
    if kwargs.get("content") is not None and not isinstance(kwargs["content"], bytes):
        assert "content-length" not in {k.lower() for k in r.request.headers}
    body = _assert_documented_error(r, status, code)
    if code == "invalid_input":
        for detail in body["error"].get("details", []):
            assert detail["field"].isprintable()
            assert len(detail["field"]) < 200
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ready"
    assert client.post("/predict", json=ROW, headers=AUTH).status_code == 200


def test_every_row_names_the_field_it_rejects(client: AppClient) -> None:
    r = client.post("/predict", json={**ROW, "sepal_length": "5.1"}, headers=AUTH)
    assert [d["field"] for d in r.json()["error"]["details"]] == ["sepal_length"]
    r = client.post("/predict", json={**ROW, "a\u0000b\u001b[31m\r\n": 1.0}, headers=AUTH)
    (detail,) = r.json()["error"]["details"]
    assert detail["field"] == "a\\x00b\\x1b[31m\\r\\n"  # escaped, never raw control chars


@pytest.mark.parametrize(
    "record",
    [
        {**ROW, "sepal_length": 5},  # an integer for a float is a number
        {**ROW, "sepal_length": -0.0},
        {**ROW, "sepal_length": 5e0},
        {**ROW, "sepal_length": 2.0**53, "petal_width": -(2.0**53)},  # the documented bounds
        {**ROW, "request_id": "ok-id_1.2:3"},
    ],
    ids=["int-for-float", "negative-zero", "exponent", "at-the-bounds", "request-id"],
)
def test_valid_edge_values_are_answered(client: AppClient, record: dict[str, Any]) -> None:
    r = client.post("/predict", json=record, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["prediction"] in {"setosa", "versicolor", "virginica"}
    assert all(isinstance(p, float) for p in body["probabilities"].values())


# --- X-Request-ID: never echoed raw --------------------------------------------------------------


async def _raw_asgi(
    app: Any, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One request straight into the ASGI app: header bytes a client library would refuse."""
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], start["headers"], content


@pytest.mark.parametrize(
    "raw_id",
    [
        b"x" * 100_000,
        b"abc\r\nSet-Cookie: session=stolen",
        b"abc\nFAKE-LOG-LINE level=ERROR",
        b"caf\xc3\xa9-\xff\xfe",
        b"",
    ],
    ids=["huge", "crlf-header-injection", "newline-log-injection", "non-ascii", "empty"],
)
def test_unusable_x_request_id_is_replaced_not_echoed(client: AppClient, raw_id: bytes) -> None:
    headers = [(b"authorization", AUTH["Authorization"].encode()), (b"x-request-id", raw_id)]
    with captured_logs() as logs:
        status, response_headers, content = client.portal.call(
            _raw_asgi, client.app, headers, orjson.dumps(ROW)
        )
    assert status == 200
    ids = [v for k, v in response_headers if k == b"x-request-id"]
    assert len(ids) == 1
    assert len(ids[0]) == 32  # a fresh uuid4 hex
    assert ids[0].isalnum()
    assert all(k != b"set-cookie" for k, _ in response_headers)
    assert orjson.loads(content)["request_id"] == ids[0].decode()
    text = logs.getvalue()
    assert ids[0].decode() in text
    if raw_id:
        assert raw_id.decode("latin-1")[:50] not in text
    assert "FAKE-LOG-LINE" not in text
    assert "stolen" not in text
    assert client.get("/health").status_code == 200


def test_a_model_answer_that_is_not_finite_is_422_not_a_null_probability(
    client: AppClient,
) -> None:
    model = client.app.state.serve.store.current
    original = model.backend.predict

    def nan_for_second_row(rows: Any) -> Any:
        answers = list(original(rows))  # a plain list: a backend that vouches for nothing
        if len(rows) > 1:
            answers[1] = Prediction("setosa", dict.fromkeys(answers[1].probabilities, math.nan))
        return answers

    object.__setattr__(model.backend, "predict", nan_for_second_row)
    try:
        r = client.post("/predict/batch", json={"records": [ROW, ROW, ROW]}, headers=AUTH)
        body = _assert_documented_error(r, 422, "unscorable_input")
        assert body["error"]["details"] == [
            {"field": "records[1]", "message": "The model's output for this record is not finite"}
        ]
        assert client.post("/predict", json=ROW, headers=AUTH).status_code == 200
    finally:
        object.__setattr__(model.backend, "predict", original)
    assert client.get("/health").status_code == 200
