"""The report's analysis: all input rows judged as the live monitor judges its window."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from src.serve.monitoring.drift import MonitoringError, Thresholds
from src.serve.monitoring.report.inputs import PREDICTION_COLUMN, ProductionData, parse_cell
from src.serve.monitoring.window import ModelMonitor


def analyse(
    metadata: Mapping[str, Any], data: ProductionData, thresholds: Thresholds
) -> dict[str, Any]:
    """The snapshot the live monitor computes (with histograms), over all input rows.

    Adds ``has_predictions``, ``source`` and the input ``warnings`` to it.
    """
    monitor = ModelMonitor(
        metadata, window=len(data.rows), thresholds=thresholds, cache_seconds=0.0
    )
    predictions = data.predictions or [None] * len(data.rows)
    if data.predictions is not None and monitor.spec.task == "regression":
        bad: dict[str, int] = {}
        predictions = [parse_cell(p, "numeric", PREDICTION_COLUMN, bad) for p in predictions]
        data.warnings += [
            f"{n} prediction(s) are not numbers and were ignored" for n in bad.values()
        ]
    monitor.observe_many(data.rows, predictions)
    result = monitor.snapshot(histograms=True, max_age=0)
    if result["window"]["rows_rejected"]:
        raise MonitoringError(f"{result['window']['rows_rejected']} input rows could not be read")
    result["has_predictions"] = data.predictions is not None
    result["source"] = data.source
    result["warnings"] = list(data.warnings)
    return result
