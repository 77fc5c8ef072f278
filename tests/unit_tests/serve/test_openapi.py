"""/openapi.json describes the loaded model's real inputs, the responses and the auth."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.serve.api_models import BatchPredictResponse, PredictResponse
from src.serve.app import create_app
from tests.unit_tests.serve.helpers import IRIS_ROW, AppClient, make_settings

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]


def _resolve(spec: dict, ref: str) -> dict:
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_predict_request_schema_has_the_iris_features(client: AppClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    schema = _resolve(spec, body["schema"]["$ref"])
    assert list(schema["properties"]) == [*IRIS_ROW, "request_id"]
    assert schema["required"] == list(IRIS_ROW)
    assert schema["additionalProperties"] is False
    for name in IRIS_ROW:
        assert schema["properties"][name]["type"] == "number"
        assert "Training range" in schema["properties"][name]["description"]
    assert body["example"] == {
        "sepal_length": 5.8,
        "sepal_width": 3.0,
        "petal_length": 4.35,
        "petal_width": 1.3,
    }


def test_batch_request_schema_references_the_record(client: AppClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]
    schema = _resolve(spec, body["schema"]["$ref"])
    records = schema["properties"]["records"]
    assert records["minItems"] == 1
    assert records["maxItems"] == 1000
    assert list(_resolve(spec, records["items"]["$ref"])["properties"]) == list(IRIS_ROW)
    assert len(body["example"]["records"]) == 2


def test_responses_are_described(client: AppClient) -> None:
    spec = client.get("/openapi.json").json()
    predict = spec["paths"]["/predict"]["post"]["responses"]
    assert {"200", "401", "403", "413", "415", "422", "503"} <= set(predict)
    ok = _resolve(spec, predict["200"]["content"]["application/json"]["schema"]["$ref"])
    assert ok["properties"]["prediction"]["enum"] == ["setosa", "versicolor", "virginica"]
    error = predict["422"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorResponse")
    health = spec["paths"]["/health"]["get"]["responses"]
    assert {"200", "503"} <= set(health)


def test_security_schemes_cover_both_headers(client: AppClient) -> None:
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    assert spec["paths"]["/predict"]["post"]["security"]
    assert "security" not in spec["paths"]["/health"]["get"]
    assert "security" not in spec["paths"]["/metrics"]["get"]


def test_without_a_model_the_spec_still_builds(artifacts: Path) -> None:
    with AppClient(create_app(make_settings(artifacts))) as client:
        spec = client.get("/openapi.json").json()
        body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["type"] == "object"
        assert "PredictRequest" not in spec["components"]["schemas"]


def test_the_per_model_responses_do_not_replace_the_static_ones(client: AppClient) -> None:
    spec = client.get("/openapi.json").json()
    components = spec["components"]["schemas"]
    for path, static, dynamic in [
        ("/predict", PredictResponse, "ModelPredictResponse"),
        ("/predict/batch", BatchPredictResponse, "ModelBatchPredictResponse"),
    ]:
        ok = spec["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
        assert ok["schema"]["$ref"].endswith(f"/{dynamic}")
        # The static component is still the static model's (a label of any type), untouched.
        assert "enum" not in str(components[static.__name__]["properties"].get("prediction"))
    item = components["PredictionItem"]["properties"]["prediction"]
    assert {"type": "string"} in item["anyOf"]
    batch_items = components["ModelBatchPredictResponse"]["properties"]["predictions"]["items"]
    assert batch_items["$ref"].endswith("/ModelPredictionItem")
    assert components["ModelPredictionItem"]["properties"]["prediction"]["enum"] == [
        "setosa",
        "versicolor",
        "virginica",
    ]


def test_without_a_model_the_static_responses_document_predictions(artifacts: Path) -> None:
    with AppClient(create_app(make_settings(artifacts))) as client:
        spec = client.get("/openapi.json").json()
    ok = spec["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/PredictResponse")
    assert "ModelPredictResponse" not in spec["components"]["schemas"]
