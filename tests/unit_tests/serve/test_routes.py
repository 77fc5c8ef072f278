"""Every route, and every error status a client can get, over the real ASGI app."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from src.serve.app import create_app
from src.serve.version import API_VERSION
from tests.artifact_factory import BuiltArtifact
from tests.unit_tests.serve.helpers import (
    ADMIN,
    API_KEY,
    AUTH,
    IRIS_ROW,
    AppClient,
    chunks,
    make_settings,
)

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]


def _assert_error(response: object, status: int, code: str) -> dict:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    assert "Traceback" not in text
    assert "Exception" not in text
    return body


# --- health -------------------------------------------------------------------------------------


def test_health_ready(client: AppClient, iris: BuiltArtifact) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ready",
        "model_name": "iris_classifier",
        "model_version": iris.model_version,
        "api_version": API_VERSION,
        "backend": "sklearn",
        "models": [
            {
                "name": "iris_classifier",
                "default": True,
                "follows": "LATEST",
                "ready": True,
                "version": iris.model_version,
                "backend": "sklearn",
                "reason": None,
            }
        ],
    }


def test_health_without_a_model_is_503_with_reason(artifacts: Path) -> None:
    with AppClient(create_app(make_settings(artifacts))) as client:
        r = client.get("/health")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "not_ready"
        assert body["model_version"] is None
        assert "no model 'iris_classifier' is published yet" in body["reason"]
        assert str(artifacts) not in body["reason"]  # no server paths to anonymous clients
        assert r.headers["x-model-version"] == "none"
        live = client.get("/health/live")
        assert live.status_code == 200
        assert live.json()["status"] == "alive"
        _assert_error(client.post("/predict", json=IRIS_ROW, headers=AUTH), 503, "model_not_ready")
        _assert_error(client.get("/model", headers=AUTH), 503, "model_not_ready")


def test_health_live(client: AppClient) -> None:
    r = client.get("/health/live")
    assert r.status_code == 200
    assert r.json() == {"status": "alive", "api_version": API_VERSION}


# --- predict ------------------------------------------------------------------------------------


def test_predict_one_record(client: AppClient, iris: BuiltArtifact) -> None:
    r = client.post("/predict", json=IRIS_ROW, headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["prediction"] == "setosa"
    assert set(body["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert sum(body["probabilities"].values()) == pytest.approx(1.0)
    assert body["probabilities"]["setosa"] > 0.9
    assert body["model_name"] == "iris_classifier"
    assert body["model_version"] == iris.model_version
    assert body["api_version"] == API_VERSION
    assert body["request_id"] == r.headers["x-request-id"]


def test_predict_echoes_the_client_request_id(client: AppClient) -> None:
    r = client.post("/predict", json={**IRIS_ROW, "request_id": "order-42"}, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["request_id"] == "order-42"


def test_predict_accepts_the_x_api_key_header(client: AppClient) -> None:
    r = client.post("/predict", json=IRIS_ROW, headers={"X-API-Key": API_KEY})
    assert r.status_code == 200


def test_predict_batch(client: AppClient, iris: BuiltArtifact) -> None:
    virginica = {"sepal_length": 7.7, "sepal_width": 3.0, "petal_length": 6.1, "petal_width": 2.3}
    r = client.post(
        "/predict/batch",
        json={"request_id": "batch-1", "records": [IRIS_ROW, virginica, IRIS_ROW]},
        headers=AUTH,
    )
    assert r.status_code == 200
    body = r.json()
    assert body["request_id"] == "batch-1"
    assert [p["prediction"] for p in body["predictions"]] == ["setosa", "virginica", "setosa"]
    assert all(set(p) == {"prediction", "probabilities"} for p in body["predictions"])
    assert body["model_version"] == iris.model_version
    assert body["model_name"] == "iris_classifier"
    assert body["api_version"] == API_VERSION


def test_batch_answers_match_single_answers(client: AppClient) -> None:
    records = [
        {
            "sepal_length": 5.0 + i / 10,
            "sepal_width": 3.0,
            "petal_length": 1.0 + i / 3,
            "petal_width": i / 5,
        }
        for i in range(12)
    ]
    batch = client.post("/predict/batch", json={"records": records}, headers=AUTH).json()
    singles = [client.post("/predict", json=r, headers=AUTH).json() for r in records]
    assert [p["prediction"] for p in batch["predictions"]] == [s["prediction"] for s in singles]
    for from_batch, single in zip(batch["predictions"], singles, strict=True):
        assert from_batch["probabilities"] == pytest.approx(single["probabilities"])


# --- model --------------------------------------------------------------------------------------


def test_model_metadata(client: AppClient, iris: BuiltArtifact) -> None:
    r = client.get("/model", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["model_name"] == "iris_classifier"
    assert body["model_version"] == iris.model_version
    assert body["backend"] == "sklearn"
    assert [f["name"] for f in body["features"]] == list(IRIS_ROW)
    assert body["target"] == {"name": "species", "classes": ["setosa", "versicolor", "virginica"]}
    assert body["metrics"]["test"]["accuracy"] == iris.metadata["metrics"]["test"]["accuracy"]
    assert body["created_at"] == iris.metadata["created_at"]
    assert body["model_file"]["sha256"] == iris.metadata["model_file"]["sha256"]
    assert "reference" not in body
    assert body["loaded_at"].endswith("+00:00")


def test_model_needs_a_key(client: AppClient) -> None:
    _assert_error(client.get("/model"), 401, "unauthorized")


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({k: v for k, v in IRIS_ROW.items() if k != "petal_width"}, "petal_width"),
        ({**IRIS_ROW, "colour": "blue"}, "colour"),
        ({**IRIS_ROW, "sepal_length": "long"}, "sepal_length"),
        ({**IRIS_ROW, "sepal_length": None}, "sepal_length"),
        ({**IRIS_ROW, "sepal_length": False}, "sepal_length"),
    ],
)
def test_invalid_records_are_422_naming_the_field(
    client: AppClient, record: dict, field: str
) -> None:
    body = _assert_error(client.post("/predict", json=record, headers=AUTH), 422, "invalid_input")
    assert [d["field"] for d in body["error"]["details"]] == [field]
    assert field in body["error"]["message"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e309"])
def test_non_finite_numbers_are_422(client: AppClient, literal: bytes) -> None:
    payload = orjson.dumps({**IRIS_ROW, "petal_width": 0}).replace(b"0}", literal + b"}")
    r = client.post(
        "/predict", content=payload, headers={**AUTH, "Content-Type": "application/json"}
    )
    _assert_error(r, 422, "invalid_json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "Request body is empty"),
        (b"{not json", "Request body is not valid JSON"),
        (b"[1, 2]", "Input should be a valid dictionary"),
        (b'"text"', "Input should be a valid dictionary"),
        (b"[" * 5000 + b"]" * 5000, "Request body is not valid JSON"),
    ],
)
def test_malformed_bodies_are_422(client: AppClient, content: bytes, message: str) -> None:
    r = client.post(
        "/predict", content=content, headers={**AUTH, "Content-Type": "application/json"}
    )
    body = _assert_error(r, 422, r.json()["error"]["code"])
    assert body["error"]["code"] in {"invalid_json", "invalid_input"}
    assert message in body["error"]["message"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_non_json_content_type_is_415(client: AppClient, content_type: str) -> None:
    r = client.post(
        "/predict", content=orjson.dumps(IRIS_ROW), headers={**AUTH, "Content-Type": content_type}
    )
    body = _assert_error(r, 415, "unsupported_media_type")
    assert "application/json" in body["error"]["message"]


def test_json_with_charset_and_missing_content_type_are_accepted(client: AppClient) -> None:
    data = orjson.dumps(IRIS_ROW)
    with_charset = {**AUTH, "Content-Type": "application/json; charset=utf-8"}
    assert client.post("/predict", content=data, headers=with_charset).status_code == 200
    assert client.post("/predict", content=data, headers=AUTH).status_code == 200


def test_batch_over_max_rows_is_413(artifacts: Path, iris: BuiltArtifact) -> None:
    with AppClient(create_app(make_settings(artifacts, max_batch_rows=3))) as client:
        ok = client.post("/predict/batch", json={"records": [IRIS_ROW] * 3}, headers=AUTH)
        assert ok.status_code == 200
        r = client.post("/predict/batch", json={"records": [IRIS_ROW] * 4}, headers=AUTH)
        body = _assert_error(r, 413, "too_many_rows")
        assert "MAX_BATCH_ROWS" in body["error"]["message"]


def test_empty_batch_is_422(client: AppClient) -> None:
    r = client.post("/predict/batch", json={"records": []}, headers=AUTH)
    _assert_error(r, 422, "invalid_input")


def test_batch_row_errors_name_row_and_field(client: AppClient) -> None:
    records = [IRIS_ROW, {**IRIS_ROW, "petal_length": "x"}]
    r = client.post("/predict/batch", json={"records": records}, headers=AUTH)
    body = _assert_error(r, 422, "invalid_input")
    assert body["error"]["details"] == [
        {"field": "records[1].petal_length", "message": "Input should be a valid number"}
    ]


def test_oversized_body_with_content_length_is_413(artifacts: Path, iris: BuiltArtifact) -> None:
    with AppClient(create_app(make_settings(artifacts, max_body_bytes=200))) as client:
        big = orjson.dumps({**IRIS_ROW, "request_id": "x" * 300})
        r = client.post(
            "/predict", content=big, headers={**AUTH, "Content-Type": "application/json"}
        )
        body = _assert_error(r, 413, "payload_too_large")
        assert "200-byte limit" in body["error"]["message"]
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200


def test_oversized_chunked_body_is_413_without_reading_it_all(
    artifacts: Path, iris: BuiltArtifact
) -> None:
    sent: list[int] = []

    def body() -> object:
        for piece in chunks(b"{" + b" " * 5000 + b"}", 100):
            sent.append(len(piece))
            yield piece

    async def abody() -> object:
        for piece in body():
            yield piece

    with AppClient(create_app(make_settings(artifacts, max_body_bytes=1000))) as client:
        r = client.post(
            "/predict", content=abody(), headers={**AUTH, "Content-Type": "application/json"}
        )
        assert "content-length" not in {k.lower() for k in r.request.headers}
        _assert_error(r, 413, "payload_too_large")
        # The app stopped reading right after the limit (ASGITransport may pre-read one chunk).
        assert sum(sent) <= 1000 + 2 * 100


def test_unknown_route_is_404_in_the_json_shape(client: AppClient) -> None:
    body = _assert_error(client.get("/nope"), 404, "not_found")
    assert "no such endpoint" in body["error"]["message"]


def test_wrong_method_is_405_in_the_json_shape(client: AppClient) -> None:
    r = client.get("/predict", headers=AUTH)
    _assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"


def test_unexpected_exceptions_become_a_generic_500(client: AppClient) -> None:
    model = client.app.state.serve.store.current

    def explode(rows: object) -> object:
        raise RuntimeError("secret internals /etc/passwd")

    object.__setattr__(model.backend, "predict", explode)
    r = client.post("/predict", json=IRIS_ROW, headers=AUTH)
    body = _assert_error(r, 500, "internal_error")
    assert body["error"]["message"] == "Internal server error."
    assert "secret" not in r.text
    assert "RuntimeError" not in r.text
    assert r.headers["x-api-version"] == API_VERSION
    assert client.get("/health").status_code == 200


def test_docs_page_is_served(client: AppClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert "swagger" in r.text.lower()


def test_admin_reload_route_exists(client: AppClient) -> None:
    r = client.post("/admin/reload", headers=ADMIN)
    assert r.status_code == 200
    assert r.json()["status"] == "unchanged"
