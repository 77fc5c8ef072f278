"""The prediction log: one step of the data plane, and its background writer.

:meth:`PredictionLog.record` is what a request pays: an optional sampling draw, a length
check and one ``deque.append`` of references it already holds (no serialisation, no I/O).
A daemon thread wakes every ``WRITE_INTERVAL_SECONDS`` (0.05 s), turns what was queued into JSON
Lines records (``records.py``), appends them to this worker's segment and their positions to
its id file (``segments.py``, ``idfiles.py``), flushes both to the operating system, and
joins feedback that was waiting for them in the shared SQLite index (``index.py``; one
short transaction per drain, no per-prediction row). At shutdown (the app's
lifespan, on SIGTERM too) :meth:`close` stops the thread after a last drain, so every record
queued before the signal is written, and the open segment is rotated.

Live quality is read from the shared index: on ``GET /monitoring`` (cached for
``CACHE_SECONDS``), and afresh right before ``/metrics`` is rendered.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from loguru import logger
from prometheus_client import CollectorRegistry

from src.serve.predlog.idfiles import LoggedPrediction
from src.serve.predlog.index import FeedbackIndex, FeedbackItem, FeedbackOutcome
from src.serve.predlog.prometheus import LiveQualityMetrics
from src.serve.predlog.quality import classification_metrics, regression_metrics, verdict
from src.serve.predlog.records import encode_lines, model_description_path
from src.serve.predlog.segments import SegmentWriter
from src.serve.settings import Settings

if TYPE_CHECKING:
    from src.serve.backends.base import Prediction, Row
    from src.serve.loaded_model import LoadedModel

#: A queued request holds a few garbage-collected objects until it is written: at thousands
#: of requests per second a 0.1 s backlog kept enough of them alive through collections to be
#: promoted to the oldest generation, setting off full collections of the whole heap (~100 ms
#: pauses every few seconds). Shorter drains keep fewer alive, but each drain has a fixed
#: cost (a thread wake-up, two flushes, one SQLite transaction): 0.02 s made the writer cost
#: about three times more per request at ~700 req/s than 0.05 s (docs/performance.md).
WRITE_INTERVAL_SECONDS = 0.05
HOUSEKEEPING_SECONDS = 30.0
CACHE_SECONDS = 1.0
#: Records are encoded this many at a time: their dicts are garbage-collected containers, and
#: a drain that kept thousands of them alive until one encoding call had every collection
#: meanwhile traverse them all (a 3,000-record drain cost 10-11.5 us per record instead of
#: 4-6; docs/performance.md). Small enough to stay under one young-generation threshold.
ENCODE_CHUNK = 128

#: One queued request: (unix time, model, prediction id, rows, predictions, seconds, batch).
Entry = tuple[float, "LoadedModel", str, "Sequence[Row]", "Sequence[Prediction]", float, bool]


@dataclass(frozen=True)
class PredictionLogConfig:
    """The ``PREDICTION_LOG_*``, ``FEEDBACK_*`` and ``LIVE_QUALITY_*`` settings."""

    directory: Path
    sample_rate: float
    keep_features: bool
    segment_bytes: int
    segment_seconds: float
    max_bytes: int
    queue_size: int
    pending_seconds: float
    window: int
    min_labelled: int
    margin: float

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictionLogConfig:
        """The prediction-log part of the service settings."""
        return cls(
            directory=settings.prediction_log_dir,
            sample_rate=settings.prediction_log_sample_rate,
            keep_features=settings.prediction_log_features,
            segment_bytes=settings.prediction_log_segment_bytes,
            segment_seconds=settings.prediction_log_segment_seconds,
            max_bytes=settings.prediction_log_max_bytes,
            queue_size=settings.prediction_log_queue_size,
            pending_seconds=settings.feedback_pending_seconds,
            window=settings.live_quality_window,
            min_labelled=settings.live_quality_min_labelled,
            margin=settings.live_quality_margin,
        )


def describe_model(model: LoadedModel) -> dict[str, Any]:
    """What the labelled-CSV export and the live verdict need to know of a model version."""
    metadata = model.metadata
    test = metadata.metrics.get("test") if isinstance(metadata.metrics, dict) else None
    return {
        "model_name": model.name,
        "model_version": model.version,
        "task": metadata.task,
        "features": list(metadata.feature_names),
        "target": metadata.target.name,
        "classes": metadata.target.classes,
        "test_metrics": test if isinstance(test, dict) else {},
    }


def _logged_predictions(
    entries: Sequence[Entry], segments: Sequence[str | None]
) -> list[LoggedPrediction]:
    """What feedback waiting for a drain's predictions joins with (built only when some
    feedback is waiting: ``segments`` holds each record's segment, None when dropped)."""
    logged: list[LoggedPrediction] = []
    position = 0
    for _, model, request_id, _, predictions, _, batch in entries:
        name, version, task = model.name, model.version, model.metadata.task
        for i, result in enumerate(predictions):
            segment = segments[position]
            position += 1
            if segment is not None:
                prediction_id = f"{request_id}/{i}" if batch else request_id
                logged.append(
                    LoggedPrediction(prediction_id, name, version, task, result[0], segment)
                )
    return logged


class PredictionLog:
    """The log of one worker process (see the module docstring)."""

    def __init__(self, config: PredictionLogConfig, registry: CollectorRegistry | None) -> None:
        self.config = config
        self.metrics = LiveQualityMetrics(registry) if registry is not None else None
        self._queue: deque[Entry] = deque()
        self._sample_rate = config.sample_rate
        self._queue_size = config.queue_size
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._index: FeedbackIndex | None = None
        self._features: dict[tuple[str, str], tuple[str, ...]] = {}
        self._training: dict[tuple[str, str], dict[str, Any]] = {}
        self._cache: tuple[float, list[dict[str, Any]]] = (-CACHE_SECONDS, [])
        self._cache_lock = threading.Lock()
        self.dropped_queue_full = 0
        self._deleted: list[str] = []  # segments the disk bound deleted, to drop from the index

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open the shared index and start the writer thread (in the app's lifespan)."""
        config = self.config
        config.directory.mkdir(parents=True, exist_ok=True)
        # The writer's own connection and segments are opened here, not in its thread, so a
        # directory the service cannot use stops the start-up with the reason instead of
        # leaving a service whose log silently writes nothing.
        writer = SegmentWriter(
            config.directory,
            segment_bytes=config.segment_bytes,
            segment_seconds=config.segment_seconds,
            max_bytes=config.max_bytes,
            on_deleted=self._deleted.extend,
        )
        writer_index = FeedbackIndex(config.directory)
        self._index = FeedbackIndex(config.directory)
        self._thread = threading.Thread(
            target=self._run,
            args=(writer, writer_index),
            name="prediction-log",
            daemon=True,
        )
        self._thread.start()
        logger.info(
            "prediction log: {} (sample rate {:g}, features {}, segments {} bytes / {:g} s, "
            "bound {} bytes)",
            self.config.directory,
            self.config.sample_rate,
            "kept" if self.config.keep_features else "left out",
            self.config.segment_bytes,
            self.config.segment_seconds,
            self.config.max_bytes,
        )

    def close(self) -> None:
        """Write everything queued, rotate the open segment, stop the thread."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=30)
        if self._index is not None:
            self._index.close()
            self._index = None

    # --- the data-plane step (hot path) ------------------------------------------------------

    def record(
        self,
        model: LoadedModel,
        request_id: str,
        rows: Sequence[Row],
        predictions: Sequence[Prediction],
        seconds: float,
        *,
        batch: bool,
    ) -> None:
        """Queue one answered request for the writer (never blocks, never raises)."""
        rate = self._sample_rate
        if rate < 1.0 and random.random() >= rate:  # nosec B311 # noqa: S311 - sampling only
            return
        if len(self._queue) >= self._queue_size:
            self.dropped_queue_full += 1
            if self.metrics is not None:
                self.metrics.dropped.labels("queue_full").inc(len(rows))
            return
        self._queue.append((time.time(), model, request_id, rows, predictions, seconds, batch))

    # --- the writer thread -------------------------------------------------------------------

    def _run(self, writer: SegmentWriter, index: FeedbackIndex) -> None:
        config = self.config
        last_housekeeping = time.monotonic()
        while True:
            stopping = self._stop.wait(WRITE_INTERVAL_SECONDS)
            try:
                self._write_queued(writer, index)
                writer.rotate_if_old()
                if time.monotonic() - last_housekeeping >= HOUSEKEEPING_SECONDS:
                    last_housekeeping = time.monotonic()
                    index.expire_pending(config.pending_seconds)
                    index.trim_windows(config.window)
            except Exception:  # the log must never take the service down
                logger.exception("prediction log: writing failed")
            if stopping and not self._queue:
                break
        with contextlib.suppress(Exception):
            writer.close()
        index.close()
        logger.info("prediction log: flushed and closed")

    def _write_queued(self, writer: SegmentWriter, index: FeedbackIndex) -> None:
        queue = self._queue
        entries = [queue.popleft() for _ in range(len(queue))]  # record() appends meanwhile
        if not entries:
            return
        records: list[dict[str, Any]] = []
        blocks: list[bytes] = []
        ids: list[str] = []
        for prediction_id, record in self._records(entries):
            records.append(record)
            ids.append(prediction_id)
            if len(records) >= ENCODE_CHUNK:
                blocks.append(encode_lines(records))
                records.clear()
        segments = writer.append_block(b"".join([*blocks, encode_lines(records)]), ids)
        writer.flush()
        too_large = segments.count(None)
        if self.metrics is not None:
            self.metrics.records.inc(len(segments) - too_large)
            if too_large:
                self.metrics.dropped.labels("too_large").inc(too_large)
        index.join_logged(lambda: _logged_predictions(entries, segments))
        # Join first, prune after: a segment written and deleted within one drain (or
        # deleted by another worker meanwhile) must not leave its feedback behind.
        written = set(segments) - {None, writer.current}
        gone = [name for name in written if name and not (writer.directory / name).exists()]
        deleted, self._deleted = self._deleted, []
        index.prune_segments({*deleted, *gone})

    def _records(self, entries: Sequence[Entry]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Each queued row's prediction id and record, in queue order (one at a time, so the
        caller decides how many records are alive at once)."""
        keep_features = self.config.keep_features
        utc_time = datetime.fromtimestamp
        last_model, name, version, features = None, "", "", ()
        for logged_at, model, request_id, rows, predictions, seconds, batch in entries:
            if model is not last_model:
                last_model, name, version = model, model.name, model.version
                features = self._features.get((name, version)) or self._describe(model)
            stamp = utc_time(logged_at, UTC)  # orjson writes it as datetime.isoformat does
            latency_ms = round(seconds * 1e6) / 1000
            if keep_features and not batch and len(rows) == 1:  # the common case, unrolled
                prediction, probabilities = predictions[0]
                yield request_id, {
                    "request_id": request_id, "time": stamp, "model_name": name,
                    "model_version": version, "features": dict(zip(features, rows[0], strict=True)),
                    "prediction": prediction, "probabilities": probabilities,
                    "latency_ms": latency_ms,
                }  # fmt: skip
                continue
            for i, (row, (prediction, probabilities)) in enumerate(
                zip(rows, predictions, strict=True)
            ):
                prediction_id = f"{request_id}/{i}" if batch else request_id
                record = {"request_id": prediction_id, "time": stamp, "model_name": name,
                          "model_version": version}  # fmt: skip
                if keep_features:
                    record["features"] = dict(zip(features, row, strict=True))
                record["prediction"] = prediction
                record["probabilities"] = probabilities
                record["latency_ms"] = latency_ms
                yield prediction_id, record

    def _describe(self, model: LoadedModel) -> tuple[str, ...]:
        """Write the version's description next to the log once (for the CSV export);
        returns its feature names."""
        path = model_description_path(self.config.directory, model.name, model.version)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(orjson.dumps(describe_model(model), option=orjson.OPT_INDENT_2))
            os.replace(temporary, path)
        features = self._features[(model.name, model.version)] = model.metadata.feature_names
        return features

    # --- feedback and live quality (request side) --------------------------------------------

    def feedback(self, items: Sequence[FeedbackItem]) -> FeedbackOutcome:
        """Store ground truth and join it with logged predictions (run off the event loop)."""
        if self._index is None:
            raise RuntimeError("the prediction log is not started")
        outcome = self._index.add_feedback(items)
        self._cache = (-CACHE_SECONDS, [])
        return outcome

    def _training_metrics(self, model: str, version: str) -> dict[str, Any]:
        key = (model, version)
        if key not in self._training:
            path = model_description_path(self.config.directory, model, version)
            try:
                self._training[key] = orjson.loads(path.read_bytes()).get("test_metrics") or {}
            except (OSError, orjson.JSONDecodeError):
                return {}
        return self._training[key]

    def live_quality(self, serving: LoadedModel | None = None) -> list[dict[str, Any]]:
        """Live metrics of every model version with feedback (and of ``serving``, with or
        without), next to its training-time test metrics."""
        with self._cache_lock:
            at, entries = self._cache
            if time.monotonic() - at >= CACHE_SECONDS and self._index is not None:
                entries = [self._entry(w) for w in self._index.windows(self.config.window)]
                self._cache = (time.monotonic(), entries)
        if serving is not None and not any(
            e["model_name"] == serving.name and e["model_version"] == serving.version
            for e in entries
        ):
            test = describe_model(serving)["test_metrics"]
            empty = self._summary(serving.name, serving.version, serving.metadata.task, 0, {}, test)
            entries = [*entries, empty]
        return entries

    def _entry(self, window: Any) -> dict[str, Any]:
        if window.task == "classification":
            live = classification_metrics(window.predictions, window.truths)
        else:
            live = regression_metrics(window.predictions, window.truths)
        training = self._training_metrics(window.model, window.version)
        return self._summary(
            window.model, window.version, window.task, window.labelled_total, live, training,
            labelled_in_window=len(window.truths),
        )  # fmt: skip

    def _summary(
        self,
        model: str,
        version: str,
        task: str,
        labelled_total: int,
        live: dict[str, float],
        training: dict[str, Any],
        *,
        labelled_in_window: int = 0,
    ) -> dict[str, Any]:
        names = ("accuracy", "f1_macro") if task == "classification" else ("mae", "rmse")
        comparable = {
            k: v for k, v in training.items() if k in names and isinstance(v, int | float)
        }
        return {
            "model_name": model,
            "model_version": version,
            "task": task,
            "labelled_total": labelled_total,
            "window": {"size": self.config.window, "labelled": labelled_in_window},
            "live": {k: round(v, 6) for k, v in live.items()},
            "training": comparable,
            "status": verdict(
                live,
                comparable,
                labelled_in_window,
                min_labelled=self.config.min_labelled,
                margin=self.config.margin,
            ),
            "margin": self.config.margin,
            "min_labelled": self.config.min_labelled,
        }

    def refresh_metrics(self) -> None:
        """Publish live quality to Prometheus (called right before /metrics renders)."""
        if self.metrics is None:
            return
        # Computed afresh for every scrape: with several workers the freshest write wins, so
        # a worker must never publish a view its cache kept from before the latest feedback.
        with self._cache_lock:
            self._cache = (-CACHE_SECONDS, [])
        try:
            self.metrics.publish(self.live_quality())
        except Exception:  # never break /metrics
            logger.exception("prediction log: publishing live quality failed")
