"""Live metrics: the same figures as scikit-learn, and the verdict against training."""

from __future__ import annotations

import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, root_mean_squared_error

from src.serve.predlog.quality import (
    classification_metrics,
    regression_metrics,
    verdict,
)


def test_classification_metrics_match_scikit_learn() -> None:
    predicted = ["a", "a", "b", "c", "c", "a", "b"]
    truth = ["a", "b", "b", "c", "a", "a", "d"]  # "d" is never predicted
    live = classification_metrics(predicted, truth)
    assert live["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert live["f1_macro"] == pytest.approx(f1_score(truth, predicted, average="macro"))


def test_regression_metrics_match_scikit_learn() -> None:
    predicted, truth = [1.0, 2.5, 4.0], [1.5, 2.0, 7.0]
    live = regression_metrics(predicted, truth)
    assert live["mae"] == pytest.approx(mean_absolute_error(truth, predicted))
    assert live["rmse"] == pytest.approx(root_mean_squared_error(truth, predicted))


def test_no_pairs_no_metrics() -> None:
    assert classification_metrics([], []) == {}
    assert regression_metrics([], []) == {}


@pytest.mark.parametrize(
    ("live", "training", "labelled", "expected"),
    [
        ({"accuracy": 0.90}, {"accuracy": 0.97}, 500, "degraded"),  # 0.07 below, margin 0.05
        ({"accuracy": 0.93}, {"accuracy": 0.97}, 500, "ok"),
        ({"accuracy": 0.50}, {"accuracy": 0.97}, 99, "insufficient_data"),
        ({"rmse": 11.0}, {"rmse": 10.0}, 500, "degraded"),  # 10 % above, margin 5 %
        ({"rmse": 10.4}, {"rmse": 10.0}, 500, "ok"),
        ({"mae": 1.0}, {}, 500, "no_reference"),
    ],
)
def test_verdict(live, training, labelled, expected) -> None:
    assert verdict(live, training, labelled, min_labelled=100, margin=0.05) == expected
