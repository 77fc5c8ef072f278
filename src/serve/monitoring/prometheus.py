"""Prometheus series for the monitor, with bounded labels (model name, feature names).

Values are published from a monitor snapshot at refresh time (right before ``/metrics`` is
rendered, and every ``MONITORING_REFRESH_SECONDS`` in each worker when several workers run),
never per request. Label values come only from the loaded model's metadata.

Multiprocess mode (``WORKERS`` > 1): every worker keeps its own window, so gauges are
aggregated over live workers with ``max`` (the worst worker's drift; ``sum`` for window rows),
and the counters are real counters summed over workers (each worker adds what its window saw
since its last refresh).
"""

from __future__ import annotations

import contextlib
import math
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from src.serve.monitoring.drift import STATUS_CODES, STATUS_NO_REFERENCE

#: Every series name this module exports (the alert-rule test checks names against it).
METRIC_NAMES = (
    "model_feature_drift_psi",
    "model_feature_drift_status",
    "model_prediction_drift_psi",
    "model_prediction_drift_status",
    "model_input_missing_total",
    "model_input_out_of_range_total",
    "model_input_unknown_category_total",
    "model_monitoring_rows_total",
    "model_monitoring_window_rows",
    "model_monitoring_window_size",
)


class MonitoringMetrics:
    """The monitoring gauges and counters in one registry, and how to publish a snapshot."""

    def __init__(self, registry: CollectorRegistry, *, multiprocess: bool = False) -> None:
        self.multiprocess = multiprocess
        features = ["model_name", "feature"]
        self.feature_psi = Gauge(
            "model_feature_drift_psi",
            "PSI of each input feature over the recent window vs the training reference "
            "(NaN before any value was seen).",
            features,
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.feature_status = Gauge(
            "model_feature_drift_status",
            "Drift verdict per feature: 2 drift, 1 warn, 0 ok, -1 insufficient data, "
            "-2 no reference statistics.",
            features,
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.prediction_psi = Gauge(
            "model_prediction_drift_psi",
            "PSI of the predicted classes (or binned predicted values) vs the training "
            "target distribution.",
            ["model_name"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.prediction_status = Gauge(
            "model_prediction_drift_status",
            "Drift verdict of the predictions (codes as model_feature_drift_status).",
            ["model_name"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.missing = Counter(
            "model_input_missing",
            "Input values that were missing, per feature.",
            features,
            registry=registry,
        )
        self.out_of_range = Counter(
            "model_input_out_of_range",
            "Numeric input values outside the training [min, max] range, per feature.",
            features,
            registry=registry,
        )
        self.unknown = Counter(
            "model_input_unknown_category",
            "Categorical input values not among the training categories, per feature.",
            features,
            registry=registry,
        )
        self.rows = Counter(
            "model_monitoring_rows",
            "Rows the monitor has seen (the denominator for the data-quality counters).",
            ["model_name"],
            registry=registry,
        )
        self.window_rows = Gauge(
            "model_monitoring_window_rows",
            "Rows currently in the monitoring window (summed over workers).",
            ["model_name"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.window_size = Gauge(
            "model_monitoring_window_size",
            "Capacity of the monitoring window in rows (summed over workers).",
            ["model_name"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._quality_counters = (
            ("missing", self.missing),
            ("out_of_range", self.out_of_range),
            ("unknown_category", self.unknown),
        )
        self._lock = threading.Lock()
        self._published: dict[str, Any] = {"monitor": None, "totals": {}, "rows": 0}
        self._labels: set[tuple[str, str]] = set()

    def publish(self, monitor: Any, snapshot: dict[str, Any]) -> None:
        """Set the series from ``snapshot`` (of ``monitor``); counters advance by the delta."""
        model = snapshot["model_name"]
        with self._lock:
            if self._published["monitor"] is not monitor:  # a new model version: new totals
                self._published = {"monitor": monitor, "totals": {}, "rows": 0}
            published = self._published
            labels = set()
            for feature, entry in snapshot["features"].items():
                labels.add((model, feature))
                score = entry["psi"]
                self.feature_psi.labels(model, feature).set(math.nan if score is None else score)
                self.feature_status.labels(model, feature).set(STATUS_CODES[entry["status"]])
                # numeric features: missing + out_of_range; categorical: missing + unknown
                totals = entry["data_quality"]["total"]
                before = published["totals"].get(feature, {})
                for key, counter in self._quality_counters:
                    if key not in totals:
                        continue
                    new, old = totals[key], before.get(key, 0)
                    child = counter.labels(model, feature)  # shown at 0 from the start
                    if new > old:
                        child.inc(new - old)
                published["totals"][feature] = dict(totals)
            prediction = snapshot["prediction"]
            score = prediction["psi"]
            self.prediction_psi.labels(model).set(math.nan if score is None else score)
            self.prediction_status.labels(model).set(STATUS_CODES[prediction["status"]])
            seen = snapshot["window"]["rows_seen"]
            if seen > published["rows"]:
                self.rows.labels(model).inc(seen - published["rows"])
            else:
                self.rows.labels(model)
            published["rows"] = max(seen, published["rows"])
            self.window_rows.labels(model).set(snapshot["window"]["rows"])
            self.window_size.labels(model).set(snapshot["window"]["size"])
            self._retire(self._labels - labels)
            self._labels = labels

    def _retire(self, stale: set[tuple[str, str]]) -> None:
        """Drop the gauges of features the new model no longer has."""
        for key in stale:
            if self.multiprocess:  # files outlive removal: mark them "not judged" instead
                self.feature_psi.labels(*key).set(math.nan)
                self.feature_status.labels(*key).set(STATUS_CODES[STATUS_NO_REFERENCE])
                continue
            for gauge in (self.feature_psi, self.feature_status):
                with contextlib.suppress(KeyError):
                    gauge.remove(*key)
