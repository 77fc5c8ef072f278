"""The data plane on its own: each request step, called the way both adapters call it."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from loguru import logger
from starlette.requests import ClientDisconnect

from src.serve.app import create_app
from src.serve.backends.base import Prediction, Predictions
from src.serve.dataplane import (
    DataPlane,
    check_json_content_type,
    ensure_finite,
    header_value,
    parse_json_body,
    read_body,
)
from src.serve.errors import (
    ForbiddenError,
    InvalidInputError,
    InvalidJSONError,
    ModelNotReadyError,
    NotFoundError,
    UnauthorizedError,
    UnscorableInputError,
    UnsupportedMediaTypeError,
)
from tests.artifact_factory import BuiltArtifact
from tests.unit_tests.serve.hardening_support import captured_logs
from tests.unit_tests.serve.helpers import API_KEY, AUTH, IRIS_ROW, AppClient, make_settings

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]
KEY_HEADER = (b"x-api-key", API_KEY.encode())


def _scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "headers": list(headers),
        "state": {"request_id": "rid-1"},
    }


def _receive(*chunks: bytes, disconnect: bool = False) -> Any:
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    if disconnect:
        messages = [{**messages[0], "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


def _call(client: AppClient, method: str, scope: dict[str, Any], receive: Any) -> Any:
    dataplane: DataPlane = client.app.state.dataplane
    return client.portal.call(getattr(dataplane, method), scope, receive)


# --- the steps ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "application/x+json"],
)
def test_json_media_types_are_accepted(content_type: str | None) -> None:
    check_json_content_type(content_type)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
def test_other_media_types_are_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="is not supported"):
        check_json_content_type(content_type)


def test_an_unprintable_media_type_is_not_echoed() -> None:
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        check_json_content_type("text/\x01evil")
    assert "\x01" not in caught.value.message


@pytest.mark.parametrize(("body", "message"), [(b"", "empty"), (b"  \n", "empty"), (b"{", "valid")])
def test_bodies_that_are_not_json_are_422(body: bytes, message: str) -> None:
    with pytest.raises(InvalidJSONError, match=message):
        parse_json_body(body)


def test_a_body_is_read_across_chunks_and_a_disconnect_is_raised() -> None:
    assert asyncio.run(read_body(_receive(b'{"a"', b": 1}"))) == b'{"a": 1}'
    with pytest.raises(ClientDisconnect):
        asyncio.run(read_body(_receive(b"{", disconnect=True)))


def test_the_first_header_of_a_name_counts() -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-type", b"application/json")]
    assert header_value(headers, b"content-type") == "text/plain"
    assert header_value(headers, b"x-missing") is None


def test_finite_predictions_pass_and_non_finite_ones_are_named() -> None:
    ensure_finite([Prediction("a", {"a": 1.0}), Prediction(2.5, None)], batch=True)
    bad = [
        Prediction("a", {"a": 1.0}),
        Prediction(math.inf, None),
        Prediction("b", {"b": math.nan}),
    ]
    with pytest.raises(UnscorableInputError) as caught:
        ensure_finite(bad, batch=True)
    assert [d["field"] for d in caught.value.details or []] == ["records[1]", "records[2]"]
    with pytest.raises(UnscorableInputError) as caught:
        ensure_finite([Prediction(math.nan, None)], batch=False)
    assert [d["field"] for d in caught.value.details or []] == ["body"]
    # A backend's one-pass verdict: False still names the rows, None means "look at each".
    for verdict in (False, None):
        with pytest.raises(UnscorableInputError) as caught:
            ensure_finite(Predictions(bad, all_finite=verdict), batch=True)
        assert [d["field"] for d in caught.value.details or []] == ["records[1]", "records[2]"]
    ensure_finite(Predictions(bad[:1], all_finite=True), batch=True)


# --- the handler, in order ----------------------------------------------------------------------


def test_predict_answers_the_json_body(client: AppClient, iris: BuiltArtifact) -> None:
    scope = _scope(KEY_HEADER)
    body = orjson.loads(_call(client, "predict", scope, _receive(orjson.dumps(IRIS_ROW))))
    assert body["request_id"] == "rid-1"
    assert body["prediction"] == "setosa"
    assert body["model_version"] == iris.model_version
    assert scope["state"]["model_version"] == iris.model_version


def test_batch_answers_one_prediction_per_record(client: AppClient) -> None:
    records = {"records": [IRIS_ROW, IRIS_ROW], "request_id": "mine"}
    body = orjson.loads(
        _call(client, "predict_batch", _scope(KEY_HEADER), _receive(orjson.dumps(records)))
    )
    assert body["request_id"] == "mine"
    assert [p["prediction"] for p in body["predictions"]] == ["setosa", "setosa"]


def test_the_key_is_checked_before_anything_else(artifacts: Path) -> None:
    with AppClient(create_app(make_settings(artifacts))) as client:  # no model: 503 otherwise
        for method in ("predict", "predict_batch"):
            with pytest.raises(UnauthorizedError):
                _call(client, method, _scope(), _receive(b"not json"))
            with pytest.raises(ForbiddenError):
                _call(client, method, _scope((b"x-api-key", b"wrong")), _receive(b"x"))
            with pytest.raises(ModelNotReadyError, match="No model is loaded"):
                _call(client, method, _scope(KEY_HEADER), _receive(b"not json"))


def test_then_the_content_type_then_the_json_then_the_schema(client: AppClient) -> None:
    text = (b"content-type", b"text/plain")
    with pytest.raises(UnsupportedMediaTypeError):
        _call(client, "predict", _scope(KEY_HEADER, text), _receive(b"not json"))
    with pytest.raises(InvalidJSONError):
        _call(client, "predict", _scope(KEY_HEADER), _receive(b"not json"))
    with pytest.raises(InvalidInputError):
        _call(client, "predict", _scope(KEY_HEADER), _receive(b"{}"))


def test_a_model_name_selects_the_served_model(client: AppClient) -> None:
    dataplane: DataPlane = client.app.state.dataplane
    scope = _scope()
    assert dataplane.ready_model(scope, "iris_classifier").name == "iris_classifier"
    with pytest.raises(NotFoundError):
        dataplane.ready_model(scope, "another_model")


def test_a_non_finite_answer_is_unscorable(client: AppClient) -> None:
    model = client.app.state.serve.store.current
    object.__setattr__(model.backend, "predict", lambda rows: [Prediction(math.nan, None)])
    with pytest.raises(UnscorableInputError):
        _call(client, "predict", _scope(KEY_HEADER), _receive(orjson.dumps(IRIS_ROW)))


def test_log_lines_of_a_request_name_the_id_it_adopted(client: AppClient) -> None:
    class Chatty:
        def on_model_loaded(self, model: Any, previous: Any) -> None:
            pass

        def on_predictions(self, model: Any, rows: Any, predictions: Any) -> None:
            logger.warning("hook saw {} rows", len(rows))

    client.app.state.serve.hooks.add(Chatty())
    with captured_logs() as logs:
        body = {**IRIS_ROW, "request_id": "client-chosen-id"}
        assert client.post("/predict", json=body, headers=AUTH).status_code == 200
        batch = {"records": [IRIS_ROW] * 20, "request_id": "batch-chosen-id"}
        assert client.post("/predict/batch", json=batch, headers=AUTH).status_code == 200
    lines = [line for line in logs.getvalue().splitlines() if "hook saw" in line]
    assert len(lines) == 2
    assert "'request_id': 'client-chosen-id'" in lines[0]
    assert "'request_id': 'batch-chosen-id'" in lines[1]  # predicted in a worker thread
