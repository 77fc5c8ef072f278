"""The scikit-learn backend and the per-model request schemas built from metadata."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from src.serve.artifact import load_artifact, resolve
from src.serve.backends.answers import FINITE_CHECK_MIN_ROWS
from src.serve.backends.base import NumericRows
from src.serve.backends.sklearn import SklearnBackend
from src.serve.errors import InvalidInputError, TooManyRowsError
from src.serve.loaded_model import LoadedModel, build_loaded_model
from tests.artifact_factory import build_iris_artifact, iris_frame, number_features
from tests.unit_tests.serve.helpers import (
    IRIS_ROW,
    ContrarianClassifier,
    make_settings,
    publish_custom_artifact,
)

IRIS_TUPLE = tuple(IRIS_ROW.values())
# Under pytest's warning capture the module-level filter in backends/sklearn.py is not in effect.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def _load(root: Path, name: str = "iris_classifier") -> LoadedModel:
    settings = make_settings(root, max_batch_rows=10)
    return build_loaded_model(resolve(root, name), settings)


def _fruit_artifact(root: Path, *, allow_unknown: bool) -> LoadedModel:
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "weight": rng.normal(150, 20, n),
            "count": rng.integers(1, 10, n),
            "colour": rng.choice(["red", "green", "yellow"], n),
        }
    )
    target = pd.Series(np.where(frame["colour"] == "yellow", "banana", "apple"), name="fruit")
    encoder = OneHotEncoder(handle_unknown="ignore" if allow_unknown else "error")
    pipeline = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("num", StandardScaler(), ["weight", "count"]), ("cat", encoder, ["colour"])]
                ),
            ),
            ("model", RandomForestClassifier(n_estimators=5, random_state=0)),
        ]
    )
    publish_custom_artifact(
        root,
        model_name="fruit",
        frame=frame,
        target=target,
        pipeline=pipeline,
        feature_specs=[
            {"name": "weight", "type": "number", "categories": None, "allow_unknown": False},
            {"name": "count", "type": "integer", "categories": None, "allow_unknown": False},
            {
                "name": "colour",
                "type": "category",
                "categories": ["green", "red", "yellow"],
                "allow_unknown": allow_unknown,
            },
        ],
        task="classification",
    )
    return _load(root, "fruit")


# --- backend ------------------------------------------------------------------------------------


def test_iris_uses_a_numpy_array_and_matches_the_pipeline(iris: object, artifacts: Path) -> None:
    model = _load(artifacts)
    backend = model.backend
    assert isinstance(backend, SklearnBackend)
    assert backend.uses_numpy_input
    frame, _ = iris_frame()
    rows = [tuple(r) for r in frame.to_numpy()[::10]]
    pipeline = load_artifact(model.ref).pipeline
    expected_labels = pipeline.predict(frame.iloc[::10])
    expected_proba = pipeline.predict_proba(frame.iloc[::10])
    results = backend.predict(rows)
    assert [r.prediction for r in results] == list(expected_labels)
    got = np.array([[r.probabilities[c] for c in pipeline.classes_] for r in results])
    np.testing.assert_allclose(got, expected_proba, rtol=1e-12)
    assert all(isinstance(r.prediction, str) for r in results)


def test_rows_with_their_matrix_answer_like_plain_rows(iris: object, artifacts: Path) -> None:
    model = _load(artifacts)
    rows = [IRIS_TUPLE, (6.3, 2.9, 5.6, 1.8)]
    plain = model.backend.predict(rows)
    assert model.backend.predict(NumericRows(rows, np.asarray(rows, dtype=np.float64))) == plain


def test_mixed_types_use_a_dataframe(artifacts: Path) -> None:
    model = _fruit_artifact(artifacts, allow_unknown=False)
    assert not model.backend.uses_numpy_input  # type: ignore[attr-defined]
    results = model.backend.predict([(150.0, 3, "yellow"), (150.0, 3, "red")])
    assert [r.prediction for r in results] == ["banana", "apple"]
    assert set(results[0].probabilities or {}) == {"apple", "banana"}


def test_regression_answers_floats_without_probabilities(artifacts: Path) -> None:
    frame, _ = iris_frame()
    target = frame.pop("petal_width").rename("petal_width_target")
    publish_custom_artifact(
        artifacts,
        model_name="petal_width",
        frame=frame,
        target=target,
        pipeline=Pipeline([("scale", StandardScaler()), ("model", Ridge())]),
        feature_specs=number_features(frame.columns),
        task="regression",
    )
    model = _load(artifacts, "petal_width")
    (result,) = model.backend.predict([(5.1, 3.5, 1.4)])
    assert isinstance(result.prediction, float)
    assert result.probabilities is None
    assert 0.0 < result.prediction < 0.6
    many = FINITE_CHECK_MIN_ROWS
    assert model.backend.predict([(5.1, 3.5, 1.4)] * many).all_finite is True
    # A coefficient that overflows float64 for a large input: the backend flags the batch.
    overflowing = SklearnBackend(
        _with_coefficients(model.backend, 1e300), model.metadata, (5.1, 3.5, 1.4)
    )
    with np.errstate(over="ignore"):
        answers = overflowing.predict([(5.1, 3.5, 1.4)] * (many - 1) + [(1e12, 3.5, 1.4)])
    assert answers.all_finite is False
    assert np.isfinite(answers[0].prediction)
    assert not np.isfinite(answers[-1].prediction)


def _with_coefficients(backend: SklearnBackend, value: float) -> Pipeline:
    pipeline = copy.deepcopy(backend._pipeline)
    pipeline[-1].coef_[:] = value
    return pipeline


def test_estimators_whose_predict_is_not_argmax_use_predict(artifacts: Path) -> None:
    build_iris_artifact(artifacts, estimator=ContrarianClassifier())
    model = _load(artifacts)
    (result,) = model.backend.predict([IRIS_TUPLE])
    assert result.prediction == "virginica"  # predict(), not argmax(predict_proba) = setosa
    assert result.probabilities == pytest.approx(
        {"setosa": 0.9, "versicolor": 0.05, "virginica": 0.05}
    )


def test_known_argmax_estimators_take_one_predict_proba_call(artifacts: Path) -> None:
    build_iris_artifact(artifacts)
    model = _load(artifacts)
    pipeline = model.backend._pipeline  # type: ignore[attr-defined]
    calls = {"predict": 0}
    original = pipeline.predict

    def counting_predict(x: object) -> object:
        calls["predict"] += 1
        return original(x)

    pipeline.predict = counting_predict
    (result,) = model.backend.predict([IRIS_TUPLE])
    assert result.prediction == "setosa"
    assert calls["predict"] == 0


# --- schemas ------------------------------------------------------------------------------------


def test_iris_example_is_the_reference_median(iris: object, artifacts: Path) -> None:
    model = _load(artifacts)
    frame, _ = iris_frame()
    assert model.schemas.example == {name: float(frame[name].median()) for name in frame.columns}


def test_parse_record_returns_feature_order_and_request_id(iris: object, artifacts: Path) -> None:
    schemas = _load(artifacts).schemas
    shuffled = dict(reversed(list(IRIS_ROW.items())))
    row, rid = schemas.parse_record({**shuffled, "request_id": "abc-1"})
    assert tuple(row) == IRIS_TUPLE
    assert rid == "abc-1"


@pytest.mark.parametrize(
    ("value", "field_message"),
    [
        ("5.1", "Input should be a valid number"),
        (True, "Input should be a valid number"),
        (None, "Input should be a valid number"),
        (float("nan"), "Input should be a finite number"),
        (float("inf"), "Input should be a finite number"),
        ([1.0], "Input should be a valid number"),
    ],
)
def test_numbers_are_strict_and_finite(
    iris: object, artifacts: Path, value: object, field_message: str
) -> None:
    schemas = _load(artifacts).schemas
    with pytest.raises(InvalidInputError) as info:
        schemas.parse_record({**IRIS_ROW, "petal_width": value})
    assert info.value.details == [{"field": "petal_width", "message": field_message}]


def test_integer_fields_take_whole_numbers_only(artifacts: Path) -> None:
    schemas = _fruit_artifact(artifacts, allow_unknown=False).schemas
    row, _ = schemas.parse_record({"weight": 140, "count": 4.0, "colour": "red"})
    assert tuple(row) == (140.0, 4, "red")
    for bad in (4.5, "4", True):
        with pytest.raises(InvalidInputError) as info:
            schemas.parse_record({"weight": 140, "count": bad, "colour": "red"})
        assert info.value.details[0]["field"] == "count"


def test_unknown_category_is_refused_when_the_model_cannot_take_it(artifacts: Path) -> None:
    schemas = _fruit_artifact(artifacts, allow_unknown=False).schemas
    with pytest.raises(InvalidInputError) as info:
        schemas.parse_record({"weight": 140, "count": 4, "colour": "purple"})
    assert info.value.details == [
        {"field": "colour", "message": "Input should be 'green', 'red' or 'yellow'"}
    ]


def test_unknown_category_is_accepted_when_the_model_ignores_it(artifacts: Path) -> None:
    model = _fruit_artifact(artifacts, allow_unknown=True)
    row, _ = model.schemas.parse_record({"weight": 140, "count": 4, "colour": "purple"})
    (result,) = model.backend.predict([row])
    assert result.prediction in {"apple", "banana"}


def test_batch_errors_name_the_row_and_field(iris: object, artifacts: Path) -> None:
    schemas = _load(artifacts).schemas
    records = [IRIS_ROW, IRIS_ROW, {**IRIS_ROW, "sepal_width": "wide"}]
    with pytest.raises(InvalidInputError) as info:
        schemas.parse_batch({"records": records}, max_rows=10)
    assert info.value.details == [
        {"field": "records[2].sepal_width", "message": "Input should be a valid number"}
    ]
    assert "records[2].sepal_width" in info.value.message


def test_batch_over_the_limit_is_413_before_validation(iris: object, artifacts: Path) -> None:
    schemas = _load(artifacts).schemas
    with pytest.raises(TooManyRowsError, match="11 records; at most 10"):
        schemas.parse_batch({"records": [{}] * 11}, max_rows=10)


@pytest.mark.parametrize("request_id", ["", "x" * 129, "has space", "new\nline", "é"])
def test_bad_request_ids_are_refused(iris: object, artifacts: Path, request_id: str) -> None:
    schemas = _load(artifacts).schemas
    with pytest.raises(InvalidInputError) as info:
        schemas.parse_record({**IRIS_ROW, "request_id": request_id})
    assert info.value.details[0]["field"] == "request_id"


def test_client_controlled_field_names_are_not_echoed_raw(iris: object, artifacts: Path) -> None:
    schemas = _load(artifacts).schemas
    with pytest.raises(InvalidInputError) as info:
        schemas.parse_record({**IRIS_ROW, "evil\nname" + "x" * 500: 1})
    field = info.value.details[0]["field"]
    assert "\n" not in field
    assert len(field) < 100
