"""Check a loaded table before training and return it cleaned, with its feature spec.

Every problem raises `DataValidationError` with a message naming the column: missing target
or feature columns, an empty table, all-null or non-numeric values in numeric columns, a
non-numeric regression target, too few rows (per class) for the split and cross-validation.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from loguru import logger

from src.training.errors import DataValidationError
from src.training.features import MISSING_CATEGORY, Feature, FeatureSpec
from src.training.metrics import Task

#: an auto-detected text column whose values are at least this fraction numbers is treated as
#: a numeric column with bad values rather than silently as a category
LOOKS_NUMERIC_FRACTION = 0.9


@dataclass(frozen=True)
class ValidatedData:
    """A cleaned table (features in spec order, then the target) and what describes it."""

    frame: pd.DataFrame
    spec: FeatureSpec
    target: str
    task: Task

    @property
    def X(self) -> pd.DataFrame:  # noqa: N802 - scikit-learn's conventional name
        """The feature columns."""
        return self.frame[self.spec.names]

    @property
    def y(self) -> pd.Series:
        """The target column."""
        return self.frame[self.target]


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of a table's column names, dtypes and values; equal tables give equal digests."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(f"{c}:{frame[c].dtype}" for c in frame.columns).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def _example(values: pd.Series) -> str:
    first = values.iloc[0]
    return f"{first!r} (row {values.index[0]})"


def _category_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING_CATEGORY
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _as_categorical(series: pd.Series) -> pd.Series:
    return pd.Series(
        [_category_text(v) for v in series], index=series.index, name=series.name, dtype=object
    )


def _numeric_or_raise(series: pd.Series, column: str, declared: bool) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        raise DataValidationError(
            f"column {column!r} holds booleans; list it under data.categorical", column
        )
    if pd.api.types.is_numeric_dtype(series):
        converted = series.astype(float)
    else:
        converted = pd.to_numeric(series, errors="coerce")
        bad = series[converted.isna() & series.notna()]
        if len(bad):
            hint = "fix the data" if declared else "fix the data or list it under data.categorical"
            raise DataValidationError(
                f"column {column!r} is numeric but has non-numeric values, e.g. "
                f"{_example(bad)}; {hint}",
                column,
            )
        converted = converted.astype(float)
    if np.isinf(converted).any():
        raise DataValidationError(f"column {column!r} has infinite values", column)
    return converted


def _looks_numeric(series: pd.Series) -> bool:
    present = series.dropna()
    if present.empty:
        return False
    parsed = pd.to_numeric(present, errors="coerce")
    return bool(parsed.notna().mean() >= LOOKS_NUMERIC_FRACTION)


def _feature_type(series: pd.Series) -> str:
    return "integer" if pd.api.types.is_integer_dtype(series) else "number"


def _check_columns(
    frame: pd.DataFrame,
    target: str,
    features: list[str] | None,
    numeric: list[str] | None,
    categorical: list[str] | None,
) -> list[str]:
    columns = [str(c) for c in frame.columns]
    if target not in columns:
        raise DataValidationError(
            f"target column {target!r} not found; columns are: {', '.join(columns)}", target
        )
    names = list(features) if features else [c for c in columns if c != target]
    if not names:
        raise DataValidationError(f"the table has no feature columns besides {target!r}", target)
    for listed in (names, numeric or [], categorical or []):
        missing = [c for c in listed if c not in columns]
        if missing:
            raise DataValidationError(
                f"feature column {missing[0]!r} not found; columns are: {', '.join(columns)}",
                missing[0],
            )
    outside = [c for c in (numeric or []) + (categorical or []) if c not in names]
    if outside:
        raise DataValidationError(
            f"column {outside[0]!r} is listed as numeric/categorical but is not a feature",
            outside[0],
        )
    return names


def _clean_target(frame: pd.DataFrame, target: str, task: Task) -> pd.DataFrame:
    missing = frame[target].isna()
    if missing.all():
        raise DataValidationError(f"target column {target!r} has no values (all null)", target)
    if missing.any():
        logger.warning(
            "dropping {} row(s) whose target {!r} is missing", int(missing.sum()), target
        )
        frame = frame.loc[~missing]
    y = frame[target]
    if task == "regression":
        values = _numeric_or_raise(y, target, declared=True)
        frame = frame.assign(**{target: values})
    elif not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        frame = frame.assign(**{target: y.map(str).astype(object)})
    return frame.reset_index(drop=True)


def _check_row_counts(y: pd.Series, target: str, task: Task, test_size: float, folds: int) -> None:
    n_rows = len(y)
    n_test = math.ceil(n_rows * test_size)
    if task == "regression":
        needed = max(2 * folds, math.ceil(2 / test_size), folds + 2)
        if n_rows < needed or n_test < 2:
            raise DataValidationError(
                f"only {n_rows} rows with a target {target!r}; need at least {needed} for "
                f"test_size={test_size:g} and cv_folds={folds}",
                target,
            )
        return
    counts = y.value_counts()
    if len(counts) < 2:
        raise DataValidationError(
            f"target column {target!r} has a single class {counts.index[0]!r}; need at least 2",
            target,
        )
    per_class = math.ceil(folds / (1 - test_size)) + 1
    small = counts[counts < per_class]
    if len(small):
        label, count = small.index[-1], int(small.iloc[-1])
        raise DataValidationError(
            f"target column {target!r}: class {label!r} has {count} row(s); need at least "
            f"{per_class} per class for a stratified split with test_size={test_size:g} and "
            f"cv_folds={folds} (add rows, lower cv_folds or drop the class)",
            target,
        )
    if n_test < len(counts) or n_rows - n_test < len(counts):
        raise DataValidationError(
            f"target column {target!r} has {len(counts)} classes but the test split would hold "
            f"only {n_test} rows; raise test_size or add rows",
            target,
        )


def validate_table(
    frame: pd.DataFrame,
    *,
    target: str,
    task: Task,
    test_size: float,
    cv_folds: int,
    features: list[str] | None = None,
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
) -> ValidatedData:
    """Validate ``frame`` and return it cleaned: features (typed) in order, then the target.

    Numeric columns become float64; categorical columns become strings, with missing values
    as ``""`` (imputed inside the pipeline).
    """
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataValidationError("the data has no rows")
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    names = _check_columns(frame, target, features, numeric, categorical)
    frame = _clean_target(frame[[*names, target]], target, task)

    declared_numeric = set(numeric or [])
    declared_categorical = set(categorical or [])
    spec: list[Feature] = []
    columns: dict[str, pd.Series] = {}
    for name in names:
        series = frame[name]
        if series.isna().all():
            raise DataValidationError(f"column {name!r} has no values (all null)", name)
        is_numeric = name in declared_numeric or (
            name not in declared_categorical
            and (
                (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))
                or _looks_numeric(series)
            )
        )
        if is_numeric:
            columns[name] = _numeric_or_raise(series, name, declared=name in declared_numeric)
            spec.append(Feature(name, _feature_type(series)))
        else:
            columns[name] = _as_categorical(series)
            spec.append(Feature(name, "category"))
    columns[target] = frame[target]
    cleaned = pd.DataFrame(columns)
    _check_row_counts(cleaned[target], target, task, test_size, cv_folds)
    return ValidatedData(cleaned, FeatureSpec(tuple(spec)), target, task)
