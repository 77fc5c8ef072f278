"""The live-quality series (``model_live_*``) and the prediction log's own counters.

Every worker computes the live gauges from the shared index, so they agree; in
multiprocess mode they are aggregated with ``livemostrecent`` (the freshest worker wins).
Label values come from the index (model names and versions that were served, the fixed
metric names), so the number of series is bounded by the versions with feedback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from src.serve.predlog.quality import STATUS_CODES

METRIC_NAMES = (
    "model_live_metric",
    "model_live_labelled_total",
    "model_live_quality_status",
    "model_training_metric",
    "serve_prediction_log_records_total",
    "serve_prediction_log_dropped_total",
)


class LiveQualityMetrics:
    """The series, created in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        mode = "livemostrecent"
        self.live = Gauge(
            "model_live_metric",
            "Live quality over the newest labelled predictions of a model version "
            "(accuracy, f1_macro, mae, rmse).",
            ["model", "version", "metric"],
            registry=registry,
            multiprocess_mode=mode,
        )
        self.labelled = Gauge(
            "model_live_labelled_total",
            "Predictions of a model version joined with their ground truth (each once).",
            ["model", "version"],
            registry=registry,
            multiprocess_mode=mode,
        )
        self.status = Gauge(
            "model_live_quality_status",
            "1 degraded, 0 ok, -1 too few labelled, -2 no training figure to compare with.",
            ["model", "version"],
            registry=registry,
            multiprocess_mode=mode,
        )
        self.training = Gauge(
            "model_training_metric",
            "The model version's test-set metric recorded at training time.",
            ["model", "version", "metric"],
            registry=registry,
            multiprocess_mode=mode,
        )
        self.records = Counter(
            "serve_prediction_log_records",
            "Prediction records written to the log.",
            registry=registry,
        )
        self.dropped = Counter(
            "serve_prediction_log_dropped",
            "Prediction records not logged: queue_full (the writer fell behind) or too_large "
            "(one record longer than a segment).",
            ["reason"],
            registry=registry,
        )

    def publish(self, versions: Iterable[Mapping[str, Any]]) -> None:
        """Set the gauges from :meth:`PredictionLog.live_quality` entries."""
        for entry in versions:
            model, version = entry["model_name"], entry["model_version"]
            self.labelled.labels(model, version).set(entry["labelled_total"])
            self.status.labels(model, version).set(STATUS_CODES[entry["status"]])
            for name, value in entry["live"].items():
                self.live.labels(model, version, name).set(value)
            for name, value in entry["training"].items():
                self.training.labels(model, version, name).set(value)
