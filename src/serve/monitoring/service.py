"""The monitor inside the service: a serving hook and the Prometheus refresh.

:class:`MonitoringService` is registered as a :class:`~src.serve.hooks.ServeHook`:

- ``on_model_loaded`` builds a fresh :class:`ModelMonitor` from the new model's metadata
  (a hot-swapped version starts with an empty window and its own reference);
- ``on_predictions`` runs in the worker thread after each prediction and costs one identity
  check plus :meth:`ModelMonitor.observe` (a row copy into a preallocated ring under a lock
  held for about a microsecond); requests still finishing on a swapped-out model are skipped;
- :meth:`refresh_metrics` publishes a (cached) snapshot to Prometheus; the service calls it
  right before rendering ``/metrics``. With several workers a daemon thread in each worker
  also refreshes every ``refresh_seconds``, so every worker's series stay current whichever
  worker answers the scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

from loguru import logger
from prometheus_client import CollectorRegistry

from src.serve.monitoring.config import MonitoringConfig
from src.serve.monitoring.drift import MonitoringError
from src.serve.monitoring.prometheus import MonitoringMetrics
from src.serve.monitoring.window import ModelMonitor

if TYPE_CHECKING:
    from src.serve.backends.base import Prediction, Row
    from src.serve.loaded_model import LoadedModel


_PREDICTION = attrgetter("prediction")


class MonitoringService:
    """One model's live monitor, kept in step with the serving model (a ServeHook)."""

    def __init__(
        self,
        config: MonitoringConfig,
        registry: CollectorRegistry | None = None,
        *,
        multiprocess: bool = False,
    ) -> None:
        self.config = config
        self.metrics = MonitoringMetrics(registry, multiprocess=multiprocess) if registry else None
        self.multiprocess = multiprocess
        # (monitor, the LoadedModel it watches): replaced as one tuple, read without a lock.
        self._current: tuple[ModelMonitor | None, LoadedModel | None] = (None, None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- ServeHook ----------------------------------------------------------------------------

    def on_model_loaded(self, model: LoadedModel, previous: LoadedModel | None) -> None:
        """Start a fresh window for the new model version."""
        retiring = self._current[0]
        if retiring is not None:  # count its last rows before it goes
            self._publish(retiring, max_age=0)
        try:
            monitor = ModelMonitor(
                model.raw_metadata,
                window=self.config.window,
                thresholds=self.config.thresholds,
                cache_seconds=self.config.cache_seconds,
            )
        except MonitoringError as exc:
            self._current = (None, model)
            logger.warning("monitoring off for model {} {}: {}", model.name, model.version, exc)
            return
        self._current = (monitor, model)
        logger.info(
            "monitoring model {} {}: window {} rows, {} features",
            model.name,
            model.version,
            monitor.capacity,
            len(monitor.spec.features),
        )
        if self.multiprocess and self.metrics is not None:
            self._start_refresher()

    def on_predictions(
        self, model: LoadedModel, rows: Sequence[Row], predictions: Sequence[Prediction]
    ) -> None:
        """Record answered rows (the per-request cost of monitoring)."""
        monitor, owner = self._current
        if monitor is None or owner is not model:
            return
        if len(rows) == 1:
            monitor.observe(rows[0], predictions[0].prediction)
        else:
            monitor.observe_many(rows, list(map(_PREDICTION, predictions)))

    # --- reading ------------------------------------------------------------------------------

    @property
    def monitor(self) -> ModelMonitor | None:
        """The monitor of the serving model (None before a model is loaded)."""
        return self._current[0]

    def refresh_metrics(self) -> None:
        """Publish the current snapshot to the Prometheus series (cheap when cached)."""
        monitor = self._current[0]
        if monitor is not None:
            self._publish(monitor)

    def _publish(self, monitor: ModelMonitor, max_age: float | None = None) -> None:
        if self.metrics is None:
            return
        try:
            self.metrics.publish(monitor, monitor.snapshot(max_age=max_age))
        except Exception:  # monitoring must never break /metrics or a model swap
            logger.exception("monitoring: publishing metrics failed")

    # --- multiprocess refresher ---------------------------------------------------------------

    def _start_refresher(self) -> None:
        if self._thread is not None or self.config.refresh_seconds <= 0:
            return
        self._thread = threading.Thread(
            target=self._refresh_forever, name="monitoring-refresh", daemon=True
        )
        self._thread.start()

    def _refresh_forever(self) -> None:
        while not self._stop.wait(self.config.refresh_seconds):
            self.refresh_metrics()

    def close(self) -> None:
        """Stop the refresher thread (at shutdown)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
