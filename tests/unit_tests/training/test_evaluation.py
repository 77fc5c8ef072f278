"""Test-set metrics and deterministic best-candidate selection."""

from __future__ import annotations

import pytest

from src.training.evaluation import (
    Scored,
    classification_metrics,
    cv_score_in_metric_units,
    regression_metrics,
    select_best,
)
from src.training.steps import choose_best, train_and_evaluate


def test_classification_metrics_with_labels():
    metrics = classification_metrics(["a", "a", "b", "c"], ["a", "b", "b", "c"], ["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["confusion_matrix"] == {
        "labels": ["a", "b", "c"],
        "matrix": [[1, 1, 0], [0, 1, 0], [0, 0, 1]],
    }
    assert metrics["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert metrics["f1_macro"] == pytest.approx((2 / 3 + 2 / 3 + 1.0) / 3)


def test_regression_metrics():
    metrics = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    assert metrics["rmse"] == pytest.approx((4 / 3) ** 0.5)
    assert metrics["mae"] == pytest.approx(2 / 3)
    assert metrics["r2"] == pytest.approx(1 - 4 / 2)


def test_error_scores_are_reported_positive():
    assert cv_score_in_metric_units(-12.5, "rmse") == 12.5
    assert cv_score_in_metric_units(0.9, "accuracy") == 0.9


def test_higher_is_better_and_lower_is_better():
    cands = [Scored("a", 0.90, 0), Scored("b", 0.95, 1), Scored("c", 0.80, 2)]
    assert select_best(cands, "accuracy").name == "b"
    assert select_best(cands, "rmse").name == "c"


def test_ties_go_to_config_order_whatever_the_input_order():
    cands = [Scored("late", 0.9, 2), Scored("early", 0.9, 0), Scored("mid", 0.9, 1)]
    assert select_best(cands, "accuracy").name == "early"
    assert select_best(list(reversed(cands)), "rmse").name == "early"


def test_float_noise_counts_as_a_tie():
    cands = [Scored("second", 0.9 + 1e-13, 1), Scored("first", 0.9, 0)]
    assert select_best(cands, "accuracy").name == "first"


def test_select_best_needs_candidates():
    with pytest.raises(ValueError, match="no candidates"):
        select_best([], "accuracy")


def test_identical_candidates_pick_the_first_listed(make_config):
    # two candidates with the same estimator and grid score exactly the same
    same = {"estimator": "KNeighborsClassifier", "grid": {"n_neighbors": [5]}}
    config = make_config(
        candidates=[{"name": "b_second", **same}, {"name": "a_first", **same}],
    )
    outcome = train_and_evaluate(config)
    assert outcome.results[0].cv_mean == outcome.results[1].cv_mean
    assert outcome.best.name == "b_second"  # listed first in the config, despite its name
    assert choose_best(list(reversed(outcome.results)), "accuracy").name == "b_second"
