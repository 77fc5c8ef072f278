"""Prometheus metrics (prometheus_client), with bounded label values.

Each :class:`Metrics` owns its registry, so several apps can live in one process (tests).
With ``WORKERS`` > 1, ``PROMETHEUS_MULTIPROC_DIR`` is set before the workers start (see
``app.main``); every worker then writes its samples there and ``GET /metrics`` aggregates all
workers with ``MultiProcessCollector``. Live gauges of workers that died are dropped at scrape
time. To add a metric: create it in ``Metrics.__init__`` with ``registry=self.registry`` (and a
``multiprocess_mode`` for gauges) and update it where the event happens.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.process_collector import ProcessCollector

from src.serve.processes import pid_alive

if TYPE_CHECKING:
    from src.serve.backends.base import Prediction, Row
    from src.serve.loaded_model import LoadedModel

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REGRESSION_CLASS = ""
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")

# No "<name>_created" series: they double the exposition and no dashboard uses them.
disable_created_metrics()


def multiprocess_dir() -> str | None:
    """The multiprocess directory when multiprocess mode is on, else None."""
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()) or None


def reap_dead_workers(directory: str) -> list[int]:
    """Drop the live-gauge files of worker processes that no longer exist."""
    dead = set()
    for entry in os.listdir(directory):
        match = _LIVE_FILE.match(entry)
        if match and not pid_alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        prom_multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)


class Metrics:
    """Every metric the service exports."""

    def __init__(self, api_version: str) -> None:
        self.multiprocess_dir = multiprocess_dir()
        self.registry = CollectorRegistry()
        reg = self.registry
        if not self.multiprocess_dir:
            ProcessCollector(registry=reg)
        self.requests = Counter(
            "serve_http_requests_total",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "serve_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.in_progress = Gauge(
            "serve_http_requests_in_progress",
            "HTTP requests being handled right now.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.predictions = Counter(
            "serve_predictions_total",
            "Predicted rows by model name, version and predicted class (empty for regression).",
            ["model_name", "model_version", "predicted_class"],
            registry=reg,
        )
        self.model_info = Gauge(
            "serve_model_info",
            "1 for the model version being served (labels: name, version, backend).",
            ["model_name", "model_version", "backend"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.model_ready = Gauge(
            "serve_model_ready",
            "1 when the model is loaded and serving, else 0 (min across workers), by model.",
            ["model_name"],
            registry=reg,
            multiprocess_mode="livemin",
        )
        self.model_loaded_at = Gauge(
            "serve_model_loaded_timestamp_seconds",
            "Unix time the serving model was loaded.",
            ["model_name"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.model_load_duration = Gauge(
            "serve_model_load_duration_seconds",
            "Seconds the last successful load took (verify, deserialise, warm up).",
            ["model_name"],
            registry=reg,
            multiprocess_mode="livemostrecent",
        )
        self.model_loads = Counter(
            "serve_model_loads_total",
            "Models loaded successfully (start-up and reloads).",
            ["model_name"],
            registry=reg,
        )
        self.reload_failures = Counter(
            "serve_model_reload_failures_total",
            "Model versions refused at load time, by reason code.",
            ["model_name", "reason"],
            registry=reg,
        )
        self.auth_failures = Counter(
            "serve_auth_failures_total",
            "Rejected requests: reason=missing (no key) or invalid (wrong key).",
            ["reason"],
            registry=reg,
        )
        build_info = Gauge(
            "serve_build_info",
            "Always 1; the API version as a label.",
            ["api_version"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        build_info.labels(api_version).set(1)
        self._request_children: dict[tuple[str, str, int], tuple[MetricWrapperBase, ...]] = {}
        self._prediction_children: dict[tuple[str, str, str], MetricWrapperBase] = {}
        self._before_render: list[Callable[[], None]] = []

    # --- per request ----------------------------------------------------------------------

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency (label children are cached)."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            label_method = method if method in KNOWN_METHODS else "OTHER"
            children = (
                self.requests.labels(route, label_method, str(status)),
                self.latency.labels(route),
            )
            self._request_children[key] = children
        children[0].inc()  # type: ignore[attr-defined]
        children[1].observe(seconds)  # type: ignore[attr-defined]

    def count_predictions(self, model_name: str, version: str, labels: Sequence[object]) -> None:
        """Count predicted rows by class label (a one-row answer goes to :meth:`count_one`)."""
        for label, n in Tally(labels).items():
            self.count_one(model_name, version, label, n)

    def count_one(self, model_name: str, version: str, label: object, n: int = 1) -> None:
        """Count ``n`` predicted rows of one class label."""
        key = (model_name, version, label if isinstance(label, str) else str(label))
        child = self._prediction_children.get(key)
        if child is None:
            child = self.predictions.labels(*key)
            self._prediction_children[key] = child
        child.inc(n)  # type: ignore[attr-defined]

    # --- model lifecycle -------------------------------------------------------------------

    def model_swapped(self, model: LoadedModel, previous: LoadedModel | None) -> None:
        """Publish the newly served model (and retire the previous one's info series)."""
        if previous is not None:
            old = (previous.name, previous.version, previous.backend.name)
            if self.multiprocess_dir:
                self.model_info.labels(*old).set(0)
            else:
                with contextlib.suppress(KeyError):  # never labelled in this process
                    self.model_info.remove(*old)
        self.model_info.labels(model.name, model.version, model.backend.name).set(1)
        self.model_ready.labels(model.name).set(1)
        self.model_loaded_at.labels(model.name).set(model.loaded_at)
        self.model_load_duration.labels(model.name).set(model.load_seconds)
        self.model_loads.labels(model.name).inc()

    def model_not_ready(self, model_name: str) -> None:
        """A configured model that is not serving yet (its ready series starts at 0)."""
        self.model_ready.labels(model_name).set(0)

    def reload_failed(self, model_name: str, reason: str) -> None:
        """Count a refused model version (``reason`` is an ArtifactError code: bounded)."""
        self.reload_failures.labels(model_name, reason).inc()

    def auth_failed(self, reason: str) -> None:
        """Count a rejected request (``missing`` or ``invalid``)."""
        self.auth_failures.labels(reason).inc()

    # --- exposition ------------------------------------------------------------------------

    def add_before_render(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` before each exposition (e.g. to refresh computed gauges)."""
        self._before_render.append(callback)

    def render(self) -> tuple[bytes, str]:
        """The text exposition (aggregated over workers in multiprocess mode)."""
        for callback in self._before_render:
            callback()
        if self.multiprocess_dir and Path(self.multiprocess_dir).is_dir():
            reap_dead_workers(self.multiprocess_dir)
            registry = CollectorRegistry()
            prom_multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def process_exiting(self) -> None:
        """Remove this worker's live gauges (multiprocess mode) at shutdown."""
        if self.multiprocess_dir:
            prom_multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)


class PredictionMetricsHook:
    """A :class:`~src.serve.hooks.ServeHook` that counts predictions and model swaps."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_model_loaded(self, model: LoadedModel, previous: LoadedModel | None) -> None:
        """Update the model info/ready/load-time metrics."""
        self.metrics.model_swapped(model, previous)

    def on_predictions(
        self, model: LoadedModel, rows: Sequence[Row], predictions: Sequence[Prediction]
    ) -> None:
        """Count predictions by class."""
        if len(predictions) == 1:  # one /predict row: no list, no tally (the common case)
            label = predictions[0].prediction if model.is_classifier else REGRESSION_CLASS
            self.metrics.count_one(model.name, model.version, label)
            return
        if model.is_classifier:
            labels: Sequence[object] = [p.prediction for p in predictions]
        else:
            labels = [REGRESSION_CLASS] * len(predictions)
        self.metrics.count_predictions(model.name, model.version, labels)
