"""Which features a fitted pipeline imputes, read from the pipeline itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from src.training.features import Feature, FeatureSpec, build_preprocessor, imputed_features

MIXED = FeatureSpec(
    (Feature("area", "number"), Feature("rooms", "integer"), Feature("zone", "category"))
)
FRAME = pd.DataFrame(
    {"area": [50.0, np.nan, 80.0, 95.0], "rooms": [1.0, 2.0, 3.0, 4.0], "zone": ["a", "", "b", "a"]}
)
TARGET = [1.0, 2.0, 3.0, 4.0]


def fitted(preprocessor: object) -> Pipeline:
    return Pipeline([("pre", preprocessor), ("model", LinearRegression())]).fit(FRAME, TARGET)


def test_training_pipelines_impute_every_feature() -> None:
    assert imputed_features(fitted(build_preprocessor(MIXED)), MIXED) == ["area", "rooms", "zone"]
    numeric = FeatureSpec((Feature("area", "number"), Feature("rooms", "integer")))
    model = Pipeline([("pre", build_preprocessor(numeric)), ("m", LinearRegression())])
    model.fit(FRAME[["area", "rooms"]], TARGET)
    assert imputed_features(model, numeric) == ["area", "rooms"]


def _step_types(transformer: object) -> list[str]:
    """The class names of a (nested) preprocessing pipeline's steps, branch by branch."""
    if isinstance(transformer, ColumnTransformer):
        return [f"{name}:{'+'.join(_step_types(t))}" for name, t, _ in transformer.transformers]
    if isinstance(transformer, Pipeline):
        return [type(step).__name__ for _, step in transformer.steps]
    return [type(transformer).__name__]


def test_scaling_is_optional_and_imputation_and_one_hot_stay() -> None:
    numeric = FeatureSpec((Feature("area", "number"), Feature("rooms", "integer")))
    assert _step_types(build_preprocessor(numeric)) == ["SimpleImputer", "StandardScaler"]
    assert _step_types(build_preprocessor(numeric, scale=False)) == ["SimpleImputer"]
    assert _step_types(build_preprocessor(MIXED, scale=False)) == [
        "numeric:SimpleImputer",
        "categorical:SimpleImputer+OneHotEncoder",
    ]
    unscaled = fitted(build_preprocessor(MIXED, scale=False))
    assert imputed_features(unscaled, MIXED) == ["area", "rooms", "zone"]
    # numbers pass through unscaled (the NaN imputed with the median), categories one-hot
    out = unscaled.named_steps["pre"].transform(FRAME)
    np.testing.assert_array_equal(out[:, 0], [50.0, 80.0, 80.0, 95.0])
    np.testing.assert_array_equal(out[:, 1], FRAME["rooms"])


def test_a_branch_without_an_imputer_imputes_nothing() -> None:
    preprocessor = ColumnTransformer(
        [
            ("numbers", Pipeline([("i", SimpleImputer()), ("s", StandardScaler())]), ["area"]),
            ("scaled", StandardScaler(), ["rooms"]),
            ("zone", OneHotEncoder(handle_unknown="ignore"), ["zone"]),
        ]
    )
    assert imputed_features(fitted(preprocessor), MIXED) == ["area"]


def test_an_imputer_for_another_marker_does_not_count() -> None:
    # a NaN imputer on a category column does not replace the missing category ""
    preprocessor = ColumnTransformer(
        [
            ("numbers", SimpleImputer(), ["area", "rooms"]),
            (
                "zone",
                Pipeline(
                    [
                        ("i", SimpleImputer(strategy="most_frequent")),
                        ("o", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                ["zone"],
            ),
        ]
    )
    assert imputed_features(fitted(preprocessor), MIXED) == ["area", "rooms"]


def test_a_model_that_is_not_a_pipeline_imputes_nothing() -> None:
    model = LinearRegression().fit(FRAME[["rooms"]], TARGET)
    assert imputed_features(model, FeatureSpec((Feature("rooms", "integer"),))) == []
