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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from src.serve.monitoring.drift import STATUS_CODES, STATUS_NO_REFERENCE

if TYPE_CHECKING:
    from src.serve.monitoring.window import ModelMonitor

FEATURE_LABELS = ("model_name", "feature")
MODEL_LABELS = ("model_name",)


@dataclass(frozen=True)
class SeriesSpec:
    """One exported series: its name, help text and labels."""

    name: str
    documentation: str
    labels: tuple[str, ...]

    @property
    def exported_name(self) -> str:
        """The name as scraped."""
        return self.name


@dataclass(frozen=True)
class GaugeSpec(SeriesSpec):
    """A gauge, and how its values from several workers combine (worst, or summed)."""

    multiprocess_mode: Literal["livemax", "livesum"]


@dataclass(frozen=True)
class CounterSpec(SeriesSpec):
    """A counter (summed over workers)."""

    @property
    def exported_name(self) -> str:
        """The name as scraped, with the ``_total`` suffix of counters."""
        return f"{self.name}_total"


FEATURE_PSI = GaugeSpec(
    "model_feature_drift_psi",
    "PSI of each input feature over the recent window vs the training reference "
    "(NaN before any value was seen; with several workers, absent until one has a value).",
    FEATURE_LABELS,
    "livemax",
)
FEATURE_STATUS = GaugeSpec(
    "model_feature_drift_status",
    "Drift verdict per feature: 2 drift, 1 warn, 0 ok, -1 insufficient data, "
    "-2 no reference statistics.",
    FEATURE_LABELS,
    "livemax",
)
PREDICTION_PSI = GaugeSpec(
    "model_prediction_drift_psi",
    "PSI of the predicted classes (or binned predicted values) vs the training "
    "target distribution.",
    MODEL_LABELS,
    "livemax",
)
PREDICTION_STATUS = GaugeSpec(
    "model_prediction_drift_status",
    "Drift verdict of the predictions (codes as model_feature_drift_status).",
    MODEL_LABELS,
    "livemax",
)
MISSING = CounterSpec(
    "model_input_missing", "Input values that were missing, per feature.", FEATURE_LABELS
)
OUT_OF_RANGE = CounterSpec(
    "model_input_out_of_range",
    "Numeric input values outside the training [min, max] range, per feature.",
    FEATURE_LABELS,
)
UNKNOWN_CATEGORY = CounterSpec(
    "model_input_unknown_category",
    "Categorical input values not among the training categories, per feature.",
    FEATURE_LABELS,
)
ROWS = CounterSpec(
    "model_monitoring_rows",
    "Rows the monitor has seen (the denominator for the data-quality counters).",
    MODEL_LABELS,
)
WINDOW_ROWS = GaugeSpec(
    "model_monitoring_window_rows",
    "Rows currently in the monitoring window (summed over workers).",
    MODEL_LABELS,
    "livesum",
)
WINDOW_SIZE = GaugeSpec(
    "model_monitoring_window_size",
    "Capacity of the monitoring window in rows (summed over workers).",
    MODEL_LABELS,
    "livesum",
)
SERIES = (
    FEATURE_PSI,
    FEATURE_STATUS,
    PREDICTION_PSI,
    PREDICTION_STATUS,
    MISSING,
    OUT_OF_RANGE,
    UNKNOWN_CATEGORY,
    ROWS,
    WINDOW_ROWS,
    WINDOW_SIZE,
)
#: Every series name this module exports (the alert-rule test checks names against it).
METRIC_NAMES = tuple(spec.exported_name for spec in SERIES)


def _gauge(spec: GaugeSpec, registry: CollectorRegistry) -> Gauge:
    return Gauge(
        spec.name,
        spec.documentation,
        spec.labels,
        registry=registry,
        multiprocess_mode=spec.multiprocess_mode,
    )


def _counter(spec: CounterSpec, registry: CollectorRegistry) -> Counter:
    return Counter(spec.name, spec.documentation, spec.labels, registry=registry)


class MonitoringMetrics:
    """The monitoring gauges and counters in one registry, and how to publish a snapshot."""

    def __init__(self, registry: CollectorRegistry, *, multiprocess: bool = False) -> None:
        self.multiprocess = multiprocess
        self.feature_psi = _gauge(FEATURE_PSI, registry)
        self.feature_status = _gauge(FEATURE_STATUS, registry)
        self.prediction_psi = _gauge(PREDICTION_PSI, registry)
        self.prediction_status = _gauge(PREDICTION_STATUS, registry)
        self.missing = _counter(MISSING, registry)
        self.out_of_range = _counter(OUT_OF_RANGE, registry)
        self.unknown = _counter(UNKNOWN_CATEGORY, registry)
        self.rows = _counter(ROWS, registry)
        self.window_rows = _gauge(WINDOW_ROWS, registry)
        self.window_size = _gauge(WINDOW_SIZE, registry)
        self._quality_counters = (
            ("missing", self.missing),
            ("out_of_range", self.out_of_range),
            ("unknown_category", self.unknown),
        )
        self._lock = threading.Lock()
        self._published: dict[str, Any] = {"monitor": None, "totals": {}, "rows": 0}
        self._labels: set[tuple[str, str]] = set()

    def publish(self, monitor: ModelMonitor, snapshot: dict[str, Any]) -> None:
        """Set the series from ``snapshot`` (of ``monitor``); counters advance by the delta."""
        model = snapshot["model_name"]
        with self._lock:
            if self._published["monitor"] is not monitor:  # a new model version: new totals
                self._published = {"monitor": monitor, "totals": {}, "rows": 0}
            published = self._published
            labels = set()
            for feature, entry in snapshot["features"].items():
                labels.add((model, feature))
                self._set_score(self.feature_psi, (model, feature), entry["psi"])
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
            self._set_score(self.prediction_psi, (model,), prediction["psi"])
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

    def _set_score(self, gauge: Gauge, labels: tuple[str, ...], score: float | None) -> None:
        """A PSI, or NaN while there is none. With several workers a worker without a score
        writes nothing: ``livemax`` keeps the first value it reads when that is NaN (NaN
        compares false), so one idle worker's NaN would hide the others' scores."""
        if score is not None:
            gauge.labels(*labels).set(score)
        elif not self.multiprocess:
            gauge.labels(*labels).set(math.nan)

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
