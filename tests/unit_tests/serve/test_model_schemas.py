"""The per-model request schemas: bulk batch validation equals pydantic's, the example is
computed once per load, and one request-id rule serves the header and the body."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from src.serve import loaded_model as loaded_model_module
from src.serve import model_schemas
from src.serve.api_models import (
    REQUEST_ID_BYTES_RE,
    BatchPredictResponse,
    PredictionItem,
    PredictResponse,
)
from src.serve.artifact import resolve
from src.serve.backends.base import NumericRows
from src.serve.errors import InvalidInputError, ServeError
from src.serve.loaded_model import build_loaded_model
from src.serve.middleware.request_context import request_id_from
from src.serve.model_schemas import MODEL_RESPONSE_NAMES, ModelSchemas, build_model_schemas
from tests.artifact_factory import BuiltArtifact
from tests.unit_tests.serve.helpers import IRIS_ROW, make_settings

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def _batch_bodies() -> list[Any]:
    base = dict(IRIS_ROW)
    missing = {k: v for k, v in base.items() if k != "petal_width"}
    bodies: list[Any] = [
        {"records": [base] * 3},
        {"records": [base, {**base, "sepal_length": 5}]},
        {"records": [{**base, "sepal_length": 2**53 + 1}]},  # rounds to 2**53: accepted
        {"records": [{**base, "sepal_length": 2**53 + 3}]},  # rounds above the bound
        {"records": [{**base, "sepal_length": 10**400}]},
        {"records": [{**base, "sepal_length": 1e308}]},
        {"records": [{**base, "sepal_length": -(2.0**53)}]},
        {"records": [{**base, "sepal_length": True}]},
        {"records": [{**base, "sepal_length": "5"}]},
        {"records": [{**base, "sepal_length": None}]},
        {"records": [{**base, "sepal_length": [1.0]}]},
        {"records": [{**base, "extra": 1.0}]},
        {"records": [missing]},
        {"records": [{**missing, "extra": 1.0}]},  # as many keys, one of them wrong
        {"records": []},
        {"records": [base] * 11},
        {"records": [base], "request_id": "ok-1.2:3"},
        {"records": [base], "request_id": "bad id"},
        {"records": [base], "request_id": "abc\n"},
        {"records": [base], "request_id": "x" * 129},
        {"records": [base], "request_id": 5},
        {"records": [base], "request_id": None},
        {"records": [base], "other": 1},
        {"records": [[5.1, 3.5, 1.4, 0.2]]},
        {"records": [base, 5]},
        {"records": "x"},
        {"request_id": "only-an-id"},
        [base],
        "text",
    ]
    rng = random.Random(0)
    choices: list[Any] = [0.5, -3.25, 7, 0, True, None, "1", 2**60, 1e300, -0.0]
    for _ in range(200):
        records = [
            {name: rng.choice(choices) if rng.random() < 0.2 else rng.random() for name in base}
            for _ in range(rng.randint(1, 4))
        ]
        bodies.append({"records": records})
    return bodies


def _outcome(schemas: Any, body: Any) -> Any:
    try:
        rows, request_id = schemas.parse_batch(body, 10)
    except ServeError as exc:
        return (type(exc), exc.status_code, exc.message, exc.details)
    return [[(type(v), v) for v in row] for row in rows], request_id


def test_bulk_batch_validation_accepts_and_refuses_exactly_what_pydantic_does(
    artifacts: Path, iris: BuiltArtifact
) -> None:
    settings = make_settings(artifacts, max_batch_rows=10)
    schemas = build_loaded_model(resolve(artifacts, "iris_classifier"), settings).schemas
    assert schemas.numeric_names == tuple(IRIS_ROW)
    pydantic_only = dataclasses.replace(schemas, numeric_names=None)
    bulk_answers = 0
    for body in _batch_bodies():
        expected = _outcome(pydantic_only, body)
        assert _outcome(schemas, body) == expected, body
        bulk_answers += schemas._parse_numeric_batch(body, 10) is not None
    assert bulk_answers >= 10  # the bulk path really answered the ordinary bodies


def test_bulk_parsed_rows_carry_their_float64_matrix(artifacts: Path, iris: BuiltArtifact) -> None:
    schemas = _iris_schemas(artifacts)
    records = [dict(IRIS_ROW), dict(IRIS_ROW, petal_width=2)]  # an int: answered as 2.0
    rows, _ = schemas.parse_batch({"records": records}, 10)
    assert isinstance(rows, NumericRows)
    assert rows.matrix.dtype == np.float64
    assert rows.matrix.tolist() == [list(row) for row in rows]
    assert rows[1][-1] == 2.0
    assert isinstance(rows[1][-1], float)


def _iris_schemas(artifacts: Path) -> ModelSchemas:
    return build_loaded_model(
        resolve(artifacts, "iris_classifier"), make_settings(artifacts)
    ).schemas


def test_the_reference_row_is_computed_once_per_load(
    monkeypatch: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    calls = []
    original = model_schemas.reference_row

    def counting(metadata: Any) -> dict[str, Any]:
        calls.append(metadata)
        return original(metadata)

    monkeypatch.setattr(model_schemas, "reference_row", counting)
    monkeypatch.setattr(loaded_model_module, "reference_row", counting)
    schemas = _iris_schemas(artifacts)
    assert len(calls) == 1
    assert schemas.example == original(calls[0])


def test_a_given_example_is_used_as_is(artifacts: Path, iris: BuiltArtifact) -> None:
    model = build_loaded_model(resolve(artifacts, "iris_classifier"), make_settings(artifacts))
    example = dict.fromkeys(IRIS_ROW, 1.0)
    schemas = build_model_schemas(
        model.metadata, has_probabilities=True, max_batch_rows=5, example=example
    )
    assert schemas.example is example
    assert schemas.request.model_json_schema()["examples"] == [example]


@pytest.mark.parametrize(
    "request_id",
    ["ok", "a.b_c:d-9", "x" * 128, "x" * 129, "has space", "semi;colon", "caf\u00e9", "", "a\n"],
)
def test_header_and_body_accept_the_same_request_ids(
    artifacts: Path, iris: BuiltArtifact, request_id: str
) -> None:
    schemas = _iris_schemas(artifacts)
    try:
        _, echoed = schemas.parse_record({**IRIS_ROW, "request_id": request_id})
        body_accepts = echoed == request_id
    except InvalidInputError:
        body_accepts = False
    raw = request_id.encode("utf-8")
    header_accepts = request_id_from([(b"x-request-id", raw)]) == request_id
    assert body_accepts == header_accepts == bool(REQUEST_ID_BYTES_RE.fullmatch(raw))


def test_per_model_responses_do_not_reuse_the_static_names(
    artifacts: Path, iris: BuiltArtifact
) -> None:
    schemas = _iris_schemas(artifacts)
    static = {PredictResponse.__name__, BatchPredictResponse.__name__, PredictionItem.__name__}
    dynamic = {schemas.response.__name__, schemas.batch_response.__name__}
    dynamic |= set(schemas.batch_response.model_json_schema().get("$defs", {}))
    assert dynamic == set(MODEL_RESPONSE_NAMES)
    assert not dynamic & static
    answer = schemas.response.model_json_schema()
    assert answer["properties"]["prediction"]["enum"] == ["setosa", "versicolor", "virginica"]
