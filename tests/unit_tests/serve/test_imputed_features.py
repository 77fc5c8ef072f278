"""Missing values where the model can take them: a feature whose saved pipeline imputes it may
be null or absent, on every route; any other feature refuses both with 422 naming it."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from src.serve.app import create_app
from src.serve.artifact import ArtifactMetadata
from src.serve.model_schemas import build_model_schemas, reference_row
from tests.artifact_factory import (
    HOUSE_NOT_IMPUTED,
    IRIS_FEATURES,
    SCHEMA_PATH,
    BuiltArtifact,
    build_house_prices_artifact,
    build_iris_artifact,
    number_features,
)
from tests.unit_tests.serve.helpers import AUTH, AppClient, assert_error, make_settings

IMPUTED_NUMBER = "TotalBsmtSF"
IMPUTED_CATEGORY = "MSZoning"


@pytest.fixture
def house(artifacts: Path) -> BuiltArtifact:
    return build_house_prices_artifact(artifacts)


@pytest.fixture
def house_client(
    clean_env: pytest.MonkeyPatch, artifacts: Path, house: BuiltArtifact
) -> Iterator[AppClient]:
    settings = make_settings(artifacts, model_name="house_prices", allow_pickle=True)
    with AppClient(create_app(settings)) as running:
        yield running


@pytest.fixture
def record(house: BuiltArtifact) -> dict[str, Any]:
    """A typical house: training medians and commonest categories, every value present."""
    return reference_row(ArtifactMetadata.model_validate(house.metadata))


def test_the_factory_metadata_follows_the_schema(house: BuiltArtifact) -> None:
    jsonschema.validate(house.metadata, json.loads(SCHEMA_PATH.read_text()))
    imputed = {f["name"]: f["imputed"] for f in house.metadata["features"]}
    assert imputed[IMPUTED_NUMBER] is True
    assert imputed[HOUSE_NOT_IMPUTED] is False


def test_null_or_absent_imputed_features_are_predicted(
    house_client: AppClient, record: dict[str, Any]
) -> None:
    full = house_client.post("/predict", json=record, headers=AUTH)
    assert full.status_code == 200, full.text
    null = house_client.post("/predict", json={**record, IMPUTED_NUMBER: None}, headers=AUTH)
    assert null.status_code == 200, null.text
    assert math.isfinite(null.json()["prediction"])
    absent = {k: v for k, v in record.items() if k not in (IMPUTED_NUMBER, IMPUTED_CATEGORY)}
    answer = house_client.post("/predict", json=absent, headers=AUTH)
    assert answer.status_code == 200, answer.text
    batch = house_client.post(
        "/predict/batch",
        json={"records": [record, {**record, IMPUTED_NUMBER: None, IMPUTED_CATEGORY: None}]},
        headers=AUTH,
    )
    assert batch.status_code == 200, batch.text
    # the imputed value is the training median: a null answers like the median itself
    assert len(batch.json()["predictions"]) == 2


def test_null_or_absent_features_without_imputation_are_refused(
    house_client: AppClient, record: dict[str, Any]
) -> None:
    null = house_client.post("/predict", json={**record, HOUSE_NOT_IMPUTED: None}, headers=AUTH)
    body = assert_error(null, 422, "invalid_input")
    assert [d["field"] for d in body["error"]["details"]] == [HOUSE_NOT_IMPUTED]
    absent = {k: v for k, v in record.items() if k != HOUSE_NOT_IMPUTED}
    body = assert_error(
        house_client.post("/predict", json=absent, headers=AUTH), 422, "invalid_input"
    )
    assert HOUSE_NOT_IMPUTED in body["error"]["message"]
    batch = house_client.post(
        "/predict/batch", json={"records": [{**record, HOUSE_NOT_IMPUTED: None}]}, headers=AUTH
    )
    body = assert_error(batch, 422, "invalid_input")
    assert HOUSE_NOT_IMPUTED in body["error"]["message"]


def test_the_monitor_counts_missing_values_per_feature(
    house_client: AppClient, record: dict[str, Any]
) -> None:
    for _ in range(2):
        missing = {**record, IMPUTED_NUMBER: None, IMPUTED_CATEGORY: None}
        assert house_client.post("/predict", json=missing, headers=AUTH).status_code == 200
    house_client.post("/predict", json=record, headers=AUTH)
    features = house_client.get("/monitoring", headers=AUTH).json()["features"]
    assert features[IMPUTED_NUMBER]["data_quality"]["total"]["missing"] == 2
    assert features[IMPUTED_CATEGORY]["data_quality"]["total"]["missing"] == 2
    assert features[IMPUTED_CATEGORY]["data_quality"]["total"]["unknown_category"] == 0
    assert features[HOUSE_NOT_IMPUTED]["data_quality"]["total"]["missing"] == 0


def test_openapi_marks_exactly_the_imputed_features_optional(house_client: AppClient) -> None:
    schemas = house_client.get("/openapi.json").json()["components"]["schemas"]
    (record,) = [s for name, s in schemas.items() if name.startswith("PredictionRecord")]
    assert HOUSE_NOT_IMPUTED in record["required"]
    assert IMPUTED_NUMBER not in record["required"]


def _iris_metadata(artifacts: Path, imputed: set[str]) -> ArtifactMetadata:
    features = [
        spec | {"imputed": spec["name"] in imputed} for spec in number_features(IRIS_FEATURES)
    ]
    built = build_iris_artifact(artifacts, metadata_overrides={"features": features})
    return ArtifactMetadata.model_validate(built.metadata)


def test_the_bulk_numeric_batch_takes_nulls_in_imputed_columns_only(artifacts: Path) -> None:
    metadata = _iris_metadata(artifacts, {"sepal_width"})
    schemas = build_model_schemas(metadata, has_probabilities=True, max_batch_rows=10)
    assert schemas.nullable == (False, True, False, False)
    row = {"sepal_length": 5.1, "sepal_width": None, "petal_length": 1.4, "petal_width": 0.2}
    rows, _ = schemas._parse_numeric_batch({"records": [row, row]}, 10)
    assert math.isnan(rows[0][1])
    assert rows[0][0] == 5.1
    # the pydantic path (an absent value) gives the same NaN row
    absent = {k: v for k, v in row.items() if k != "sepal_width"}
    (pyd_row,), _ = schemas.parse_batch({"records": [absent]}, 10)
    assert math.isnan(pyd_row[1])
    assert schemas.parse_record(absent)[0][0] == 5.1
    # a null where the model does not impute: not the fast path's to accept
    assert schemas._parse_numeric_batch({"records": [{**row, "petal_width": None}]}, 10) is None


def test_old_artifacts_without_the_field_impute_nothing(artifacts: Path) -> None:
    built = build_iris_artifact(artifacts)
    assert all("imputed" not in f for f in built.metadata["features"])
    schemas = build_model_schemas(
        ArtifactMetadata.model_validate(built.metadata), has_probabilities=True, max_batch_rows=10
    )
    assert schemas.nullable == (False, False, False, False)
    assert set(schemas.request.model_json_schema()["required"]) == set(IRIS_FEATURES)
