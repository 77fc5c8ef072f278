"""Live quality metrics over labelled predictions, and the verdict against training.

Classification: accuracy and macro F1 (the mean over every class seen among the labels or
the predictions of ``2 TP / (2 TP + FP + FN)``, as scikit-learn's ``f1_score(average="macro")``).
Regression: MAE and RMSE. Names match the training metrics in ``metadata.json``
(``metrics.test``), so the two can be compared key by key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from src.serve.monitoring.drift import STATUS_CODES as DRIFT_STATUS_CODES
from src.serve.monitoring.drift import STATUS_INSUFFICIENT, STATUS_NO_REFERENCE, STATUS_OK

# The drift monitor's status words and codes, so dashboards read both the same way.
STATUS_DEGRADED = "degraded"
#: Numeric codes exported as ``model_live_quality_status``.
STATUS_CODES: dict[str, int] = {
    STATUS_NO_REFERENCE: DRIFT_STATUS_CODES[STATUS_NO_REFERENCE],
    STATUS_INSUFFICIENT: DRIFT_STATUS_CODES[STATUS_INSUFFICIENT],
    STATUS_OK: DRIFT_STATUS_CODES[STATUS_OK],
    STATUS_DEGRADED: 1,
}
HIGHER_IS_BETTER = {"accuracy": True, "f1_macro": True, "mae": False, "rmse": False}


def classification_metrics(predicted: Sequence[str], truth: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro F1 of ``predicted`` against ``truth`` (class labels as strings)."""
    n = len(truth)
    if n == 0 or len(predicted) != n:
        return {}
    correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
    f1s = []
    for label in sorted(set(predicted) | set(truth)):
        tp = sum(p == label and t == label for p, t in zip(predicted, truth, strict=True))
        fp = sum(p == label and t != label for p, t in zip(predicted, truth, strict=True))
        fn = sum(p != label and t == label for p, t in zip(predicted, truth, strict=True))
        denominator = 2 * tp + fp + fn
        f1s.append(2 * tp / denominator if denominator else 0.0)
    return {"accuracy": correct / n, "f1_macro": sum(f1s) / len(f1s)}


def regression_metrics(predicted: Sequence[float], truth: Sequence[float]) -> dict[str, float]:
    """MAE and RMSE of ``predicted`` against ``truth``."""
    n = len(truth)
    if n == 0 or len(predicted) != n:
        return {}
    errors = [p - t for p, t in zip(predicted, truth, strict=True)]
    return {
        "mae": sum(abs(e) for e in errors) / n,
        "rmse": math.sqrt(sum(e * e for e in errors) / n),
    }


def verdict(
    live: Mapping[str, float],
    training: Mapping[str, Any],
    labelled: int,
    *,
    min_labelled: int,
    margin: float,
) -> str:
    """``degraded`` when any live metric is worse than its training figure by ``margin``
    (absolute for accuracy/F1, relative for MAE/RMSE), ``insufficient_data`` below
    ``min_labelled`` labelled predictions, ``no_reference`` without comparable training
    figures, else ``ok``."""
    if labelled < min_labelled or not live:
        return STATUS_INSUFFICIENT
    compared = False
    for name, value in live.items():
        reference = training.get(name)
        if not isinstance(reference, int | float) or not math.isfinite(reference):
            continue
        compared = True
        if HIGHER_IS_BETTER[name]:
            if value < reference - margin:
                return STATUS_DEGRADED
        elif value > reference * (1 + margin):
            return STATUS_DEGRADED
    return STATUS_OK if compared else STATUS_NO_REFERENCE
