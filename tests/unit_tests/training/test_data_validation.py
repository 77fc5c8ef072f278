"""Data validation: each bad input fails with a message naming the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.training.data_validation import fingerprint, validate_table
from src.training.errors import DataValidationError
from tests.unit_tests.training.conftest import mixed_classification_frame, mixed_regression_frame


def classify(frame: pd.DataFrame, **kwargs):
    options = {"target": "label", "task": "classification", "test_size": 0.2, "cv_folds": 3}
    options.update(kwargs)
    return validate_table(frame, **options)


def regress(frame: pd.DataFrame, **kwargs):
    options = {"target": "SalePrice", "task": "regression", "test_size": 0.2, "cv_folds": 3}
    options.update(kwargs)
    return validate_table(frame, **options)


def test_mixed_table_is_typed_and_cleaned():
    frame = mixed_classification_frame()
    data = classify(frame)
    assert data.spec.names == ["size", "weight", "colour"]
    assert [f.type for f in data.spec.features] == ["number", "number", "category"]
    assert data.frame.columns.tolist() == ["size", "weight", "colour", "label"]
    # missing categories become "" (imputed inside the pipeline), numbers stay NaN
    assert (data.frame["colour"] == "").sum() == frame["colour"].isna().sum()
    assert data.frame["weight"].isna().sum() == frame["weight"].isna().sum()
    assert set(data.y) == {"yes", "no"}


def test_integer_columns_are_typed_integer():
    data = regress(mixed_regression_frame())
    types = {f.name: f.type for f in data.spec.features}
    assert types == {"LotArea": "integer", "YearBuilt": "integer", "MSZoning": "category"}


def test_explicit_lists_override_detection():
    frame = mixed_regression_frame()
    data = regress(frame, categorical=["YearBuilt"], features=["LotArea", "YearBuilt"])
    assert data.spec.names == ["LotArea", "YearBuilt"]
    assert data.spec.categorical == ["YearBuilt"]
    assert data.frame["YearBuilt"].map(type).eq(str).all()


def test_missing_target_column():
    with pytest.raises(DataValidationError, match="target column 'price' not found") as info:
        regress(mixed_regression_frame(), target="price")
    assert info.value.column == "price"
    assert "columns are: LotArea, YearBuilt, MSZoning, SalePrice" in str(info.value)


def test_missing_feature_column():
    with pytest.raises(DataValidationError, match="feature column 'Garage' not found"):
        regress(mixed_regression_frame(), features=["LotArea", "Garage"])
    with pytest.raises(DataValidationError, match="feature column 'Pool' not found"):
        regress(mixed_regression_frame(), numeric=["Pool"])


def test_listed_column_must_be_a_feature():
    with pytest.raises(DataValidationError, match="'YearBuilt' is listed as numeric"):
        regress(mixed_regression_frame(), features=["LotArea"], numeric=["YearBuilt"])


def test_empty_table():
    with pytest.raises(DataValidationError, match="no rows"):
        classify(pd.DataFrame({"size": [], "label": []}))


def test_all_null_numeric_column():
    frame = mixed_classification_frame()
    frame["weight"] = np.nan
    with pytest.raises(DataValidationError, match=r"column 'weight' has no values \(all null\)"):
        classify(frame)


def test_all_null_categorical_column():
    frame = mixed_classification_frame()
    frame["colour"] = None
    with pytest.raises(DataValidationError, match="column 'colour' has no values"):
        classify(frame)


def test_non_numeric_value_in_declared_numeric_column():
    frame = mixed_classification_frame()
    frame["size"] = frame["size"].astype(object)
    frame.loc[5, "size"] = "big"
    with pytest.raises(
        DataValidationError, match="column 'size' is numeric but has non-numeric"
    ) as e:
        classify(frame, numeric=["size"])
    assert "'big' (row 5)" in str(e.value)
    assert e.value.column == "size"


def test_mostly_numeric_text_column_is_not_silently_a_category():
    frame = mixed_classification_frame()
    frame["weight"] = frame["weight"].round(1).astype(str)
    frame.loc[3, "weight"] = "n/a?"
    with pytest.raises(DataValidationError, match=r"list it under data\.categorical"):
        classify(frame)
    # listing it as categorical is the documented way out
    assert classify(frame, categorical=["weight"]).spec.categorical == ["weight", "colour"]


def test_infinite_values_are_refused():
    frame = mixed_classification_frame()
    frame.loc[2, "size"] = np.inf
    with pytest.raises(DataValidationError, match="column 'size' has infinite values"):
        classify(frame)


def test_non_numeric_regression_target():
    frame = mixed_regression_frame()
    frame["SalePrice"] = frame["SalePrice"].astype(object)
    frame.loc[0, "SalePrice"] = "expensive"
    with pytest.raises(DataValidationError, match="column 'SalePrice' is numeric but"):
        regress(frame)


def test_rows_without_target_are_dropped_but_all_null_target_fails():
    frame = mixed_regression_frame()
    frame.loc[:9, "SalePrice"] = np.nan
    assert len(regress(frame).frame) == len(frame) - 10
    frame["SalePrice"] = np.nan
    with pytest.raises(DataValidationError, match=r"target column 'SalePrice' has no values"):
        regress(frame)


def test_too_few_rows_per_class_for_stratified_cv():
    frame = mixed_classification_frame()
    rare = frame.iloc[:3].assign(label="maybe")
    with pytest.raises(DataValidationError) as info:
        classify(pd.concat([frame, rare], ignore_index=True), cv_folds=5)
    message = str(info.value)
    assert "target column 'label': class 'maybe' has 3 row(s)" in message
    assert "need at least 8 per class" in message
    assert info.value.column == "label"


def test_single_class_is_refused():
    frame = mixed_classification_frame().assign(label="yes")
    with pytest.raises(DataValidationError, match="single class 'yes'"):
        classify(frame)


def test_too_few_rows_for_regression():
    with pytest.raises(DataValidationError, match="only 5 rows"):
        regress(mixed_regression_frame().head(5))


def test_fingerprint_is_stable_and_sensitive():
    a = classify(mixed_classification_frame()).frame
    b = classify(mixed_classification_frame()).frame
    assert fingerprint(a) == fingerprint(b)
    changed = b.copy()
    changed.loc[0, "size"] += 1e-9
    assert fingerprint(changed) != fingerprint(a)
    renamed = a.rename(columns={"size": "Size"})
    assert fingerprint(renamed) != fingerprint(a)
