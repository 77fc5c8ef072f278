"""The Open Inference Protocol routes in-process: statuses, the protocol's error body, auth,
limits, metrics, and that our own routes keep their error shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from src.serve.app import create_app
from src.serve.oip.lean import infer_target
from tests.artifact_factory import BuiltArtifact
from tests.unit_tests.serve.helpers import (
    API_KEY,
    AUTH,
    IRIS_ROW,
    AppClient,
    assert_error,
    make_settings,
    metric_value,
)

INFER = "/v2/models/iris_classifier/infer"
ROW = list(IRIS_ROW.values())
MATRIX = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}


def assert_oip_error(response: httpx.Response, status: int, *needles: str) -> str:
    """The protocol's error body: exactly ``{"error": "<message>"}``, no class names."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"], str)
    assert "Error" not in body["error"]
    assert "Traceback" not in body["error"]
    assert response.headers["x-request-id"]
    for needle in needles:
        assert needle in body["error"]
    return body["error"]


def test_health_and_server_metadata(client: AppClient) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/iris_classifier/ready"):
        response = client.get(path)
        assert (response.status_code, response.content) == (200, b""), path
    assert client.get("/v2").json() == {
        "name": "mlops-toolset",
        "version": client.get("/health").json()["api_version"],
        "extensions": ["binary_tensor_data"],
    }


def test_not_ready_is_503_with_the_reason(clean_env: pytest.MonkeyPatch, artifacts: Path) -> None:
    with AppClient(create_app(make_settings(artifacts))) as client:
        assert client.get("/v2/health/live").status_code == 200
        assert_oip_error(client.get("/v2/health/ready"), 503, "no model 'iris_classifier'")
        assert_oip_error(client.get("/v2/models/iris_classifier/ready"), 503)
        assert_oip_error(client.post(INFER, json=MATRIX, headers=AUTH), 503)


def test_model_metadata(client: AppClient, iris: BuiltArtifact) -> None:
    for path in (
        "/v2/models/iris_classifier",
        f"/v2/models/iris_classifier/versions/{iris.model_version}",
    ):
        body = client.get(path, headers=AUTH).json()
        assert body["name"] == "iris_classifier"
        assert body["versions"] == [iris.model_version]
        assert [(t["name"], t["datatype"], t["shape"]) for t in body["inputs"]] == [
            (name, "FP64", [-1]) for name in IRIS_ROW
        ]
        assert body["outputs"] == [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, 3]},
        ]
        assert orjson.loads(body["parameters"]["classes"]) == iris.metadata["target"]["classes"]


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/nope/ready",
        "/v2/models/iris_classifier/versions/19990101T000000000000Z/ready",
        "/v2/models/nope",
        "/v2/models/iris_classifier/versions/19990101T000000000000Z",
        "/v2/models/nope/infer",
        "/v2/models/iris_classifier/versions/19990101T000000000000Z/infer",
        "/v2/no/such/path",
    ],
)
def test_unknown_model_version_or_path_is_404(client: AppClient, path: str) -> None:
    method = client.post if path.endswith("/infer") else client.get
    kwargs: dict[str, Any] = {"json": MATRIX} if path.endswith("/infer") else {}
    assert_oip_error(method(path, headers=AUTH, **kwargs), 404)


def test_infer_at_the_served_version(client: AppClient, iris: BuiltArtifact) -> None:
    path = f"/v2/models/iris_classifier/versions/{iris.model_version}/infer"
    body = client.post(path, json=MATRIX | {"id": "x-1"}, headers=AUTH).json()
    assert body["id"] == "x-1"
    assert body["model_version"] == iris.model_version
    assert body["outputs"][0]["data"] == [
        client.post("/predict", json=IRIS_ROW, headers=AUTH).json()["prediction"]
    ]


def test_auth_errors(client: AppClient) -> None:
    missing = client.post(INFER, json=MATRIX)
    assert_oip_error(missing, 401, "API key")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_oip_error(client.post(INFER, json=MATRIX, headers={"X-API-Key": "wrong"}), 403)
    assert_oip_error(client.get("/v2/models/iris_classifier"), 401)
    assert client.post(INFER, json=MATRIX, headers={"X-API-Key": API_KEY}).status_code == 200


def test_invalid_input_is_400_not_422(client: AppClient) -> None:
    bad = {
        "inputs": [
            {"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 1e300, 1.4, 0.2]}
        ]
    }
    assert_oip_error(client.post(INFER, json=bad, headers=AUTH), 400, "row[0].sepal_width")
    assert_oip_error(client.post(INFER, content=b"{", headers=AUTH), 400, "not valid JSON")
    assert_oip_error(
        client.post(INFER, content=b"{}", headers={**AUTH, "Content-Type": "text/csv"}), 415
    )


def test_limits(clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact) -> None:
    settings = make_settings(artifacts, max_body_bytes=400, max_batch_rows=2)
    with AppClient(create_app(settings)) as client:
        three = {
            "inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP64", "data": ROW * 3}]
        }
        assert_oip_error(client.post(INFER, json=three, headers=AUTH), 413, "MAX_BATCH_ROWS")
        big = MATRIX | {"id": "x" * 500}
        assert_oip_error(client.post(INFER, json=big, headers=AUTH), 413, "MAX_BODY_BYTES")


def test_binary_request_and_response(client: AppClient) -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 16},
                }
            ],
            "outputs": [{"name": "label", "parameters": {"binary_data": True}}],
        }
    )
    response = client.post(
        INFER,
        content=header + np.array([ROW], dtype="<f4").tobytes(),
        headers={
            **AUTH,
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    json_length = int(response.headers["inference-header-content-length"])
    body = orjson.loads(response.content[:json_length])
    assert body["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 10}}
    ]
    assert response.content[json_length:] == b"\x06\x00\x00\x00setosa"


def test_metrics_and_our_own_error_shape_unchanged(client: AppClient) -> None:
    client.post(INFER, json=MATRIX, headers=AUTH)
    client.post(INFER, json={"inputs": []}, headers=AUTH)
    text = client.get("/metrics").text
    route = "/v2/models/{model_name}/infer"
    assert metric_value(text, "serve_http_requests_total", {"route": route, "status": "200"}) == 1
    assert metric_value(text, "serve_http_requests_total", {"route": route, "status": "400"}) == 1
    assert metric_value(text, "serve_predictions_total", {"predicted_class": "setosa"}) == 1
    assert_error(
        client.post("/predict", json={"sepal_length": 1}, headers=AUTH), 422, "invalid_input"
    )
    assert_error(client.get("/no/such/path"), 404, "not_found")


def test_openapi_lists_the_protocol(client: AppClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v2",
        "/v2/health/ready",
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer",
    } <= set(paths)
    body = paths["/v2/models/{model_name}/infer"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/octet-stream"} <= set(body)
    assert "$ref" not in orjson.dumps(body["application/json"]).decode()  # all inline
    tensor = body["application/json"]["schema"]["properties"]["inputs"]["items"]
    assert {"name", "shape", "datatype", "data"} <= set(tensor["properties"])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/models/iris/infer", ("/v2/models/{model_name}/infer", "iris", None)),
        (
            "/v2/models/iris/versions/7/infer",
            ("/v2/models/{model_name}/versions/{model_version}/infer", "iris", "7"),
        ),
        ("/v2/models//infer", None),
        ("/v2/models/iris/extra/infer", None),
        ("/v2/models/iris/versions//infer", None),
        ("/v2/models/iris", None),
        ("/predict", None),
    ],
)
def test_infer_target(path: str, expected: tuple[str, str, str | None] | None) -> None:
    target = infer_target(path)
    assert (target if target is None else (target[0].path, target[1], target[2])) == expected


def test_lean_and_fastapi_infer_answer_alike(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    requests = [
        (MATRIX | {"id": "same"}, {}),
        ({"inputs": []}, {}),
        (MATRIX, {"Authorization": "Bearer wrong"}),
    ]
    answers = {}
    for adapter in ("lean", "fastapi"):
        app = create_app(make_settings(artifacts))
        if adapter == "fastapi":
            app.lean_infer = None  # type: ignore[attr-defined]
        with AppClient(app) as client:
            answers[adapter] = [
                (r.status_code, r.content, r.headers["content-type"])
                for body, headers in requests
                for r in [client.post(INFER, json=body, headers={**AUTH, **headers})]
            ]
            text = client.get("/metrics").text
            assert (
                metric_value(
                    text,
                    "serve_http_requests_total",
                    {"route": "/v2/models/{model_name}/infer", "status": "400"},
                )
                == 1
            ), adapter
    assert answers["lean"] == answers["fastapi"]
    assert [a[0] for a in answers["lean"]] == [200, 400, 403]
