"""The report's analysis (report/analysis.py): the live monitor's verdict over a whole file."""

from __future__ import annotations

import numpy as np
import pytest

from src.serve.monitoring.drift import MonitoringError, Thresholds
from src.serve.monitoring.report.analysis import analyse
from src.serve.monitoring.report.inputs import ProductionData
from tests.artifact_factory import IRIS_FEATURES
from tests.unit_tests.serve.monitoring.helpers import iris_traffic, make_monitor

THRESHOLDS = Thresholds(warn=0.1, drift=0.25, min_samples=200)


def test_offline_analysis_equals_the_live_snapshot(iris_metadata):
    rows, labels = iris_traffic(400, seed=22, shift={"sepal_width": 3.0})
    online = make_monitor(iris_metadata, monitoring_window=400)
    online.observe_many(rows.tolist(), labels)
    data = ProductionData(rows.tolist(), list(labels), "window.json", ["a warning"])
    offline = analyse(iris_metadata, data, THRESHOLDS)
    live = online.snapshot(histograms=True, max_age=0)
    assert offline["drifted_features"] == live["drifted_features"] == ["sepal_width"]
    for name in IRIS_FEATURES:
        assert offline["features"][name] == live["features"][name]
    assert offline["prediction"] == live["prediction"]
    assert offline["window"]["rows"] == 400
    assert offline["has_predictions"] is True
    assert offline["source"] == "window.json"
    assert offline["warnings"] == ["a warning"]


def test_without_predictions_the_prediction_is_not_judged(iris_metadata):
    rows, _ = iris_traffic(300, seed=25)
    result = analyse(iris_metadata, ProductionData(rows.tolist(), None, "p.csv"), THRESHOLDS)
    assert result["has_predictions"] is False
    assert result["prediction"]["count"] == 0
    assert result["status"] == "ok"


def test_categorical_features_and_regression_predictions(mixed_regression_metadata):
    rows, _ = iris_traffic(300, seed=24)
    colors = np.random.default_rng(0).choice(["red", "green", "mauve"], 300).tolist()
    predictions: list[object] = [str(v) for v in np.random.default_rng(1).uniform(0, 1, 300)]
    predictions[0] = "n/a-value"
    data = ProductionData(
        [[*row, color] for row, color in zip(rows.tolist(), colors, strict=True)],
        predictions,
        "p.csv",
    )
    result = analyse(mixed_regression_metadata, data, THRESHOLDS)
    assert result["features"]["color"]["status"] == "drift"
    assert result["features"]["color"]["data_quality"]["window"]["unknown_category"] > 50
    assert result["prediction"]["kind"] == "value"
    assert result["prediction"]["status"] == "ok"
    assert result["prediction"]["count"] == 299
    assert result["warnings"] == ["1 prediction(s) are not numbers and were ignored"]


def test_rows_that_do_not_fit_the_model_are_an_error(iris_metadata):
    data = ProductionData([[1.0, 2.0], [1.0, 2.0]], None, "p.csv")
    with pytest.raises(MonitoringError, match="2 input rows could not be read"):
        analyse(iris_metadata, data, THRESHOLDS)
