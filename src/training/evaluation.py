"""Held-out test metrics, cross-validation score conversion and best-candidate selection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    r2_score,
    root_mean_squared_error,
)

from src.training.metrics import METRICS, Task

#: CV scores equal to this many decimals count as a tie (broken by config order)
TIE_DECIMALS = 10


def to_json_scalar(value: Any) -> Any:
    """numpy scalars -> plain Python, so metrics serialise to JSON unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def classification_metrics(
    y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any]
) -> dict[str, Any]:
    """accuracy, balanced accuracy, macro F1, per-class report and labelled confusion matrix."""
    labels = [to_json_scalar(label) for label in labels]
    report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    per_class = {
        str(label): {
            "precision": float(report[str(label)]["precision"]),
            "recall": float(report[str(label)]["recall"]),
            "f1": float(report[str(label)]["f1-score"]),
            "support": int(report[str(label)]["support"]),
        }
        for label in labels
    }
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "f1_macro": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "per_class": per_class,
        "confusion_matrix": {"labels": labels, "matrix": matrix.astype(int).tolist()},
        "n_test": len(y_true),
    }


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, Any]:
    """RMSE, MAE and R2."""
    return {
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
        "n_test": len(y_true),
    }


def evaluate_model(model: Any, X: pd.DataFrame, y: pd.Series, task: Task) -> dict[str, Any]:  # noqa: N803
    """Test-set metrics of a fitted pipeline for ``task``."""
    predictions = model.predict(X)
    if task == "classification":
        return classification_metrics(y, predictions, list(model.classes_))
    return regression_metrics(y, predictions)


def cv_score_in_metric_units(score: float, metric: str) -> float:
    """scikit-learn's ``neg_*`` scorers return negated errors; report RMSE/MAE positive."""
    return float(score if METRICS[metric].higher_is_better else -score)


@dataclass(frozen=True)
class Scored:
    """What selection needs to know about one candidate."""

    name: str
    cv_mean: float
    order: int  # position in the config


def select_best(candidates: Sequence[Scored], metric: str) -> Scored:
    """The best candidate by cross-validated ``metric``.

    Scores are compared rounded to `TIE_DECIMALS` decimals; ties go to the candidate listed
    first in the config, so the choice never depends on run order or float noise.
    """
    if not candidates:
        raise ValueError("no candidates to select from")
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0

    def key(c: Scored) -> tuple[float, int]:
        return (-sign * round(c.cv_mean, TIE_DECIMALS), c.order)

    return min(candidates, key=key)
