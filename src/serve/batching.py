"""Adaptive micro-batching: concurrent single-row /predict calls share one backend call.

On when ``BATCH_MAX_SIZE`` > 1 (``create_app`` then builds a :class:`MicroBatcher` instead of
the plain :class:`~src.serve.inference.InferenceService`). Every backend has a fixed cost per
call (scikit-learn's input validation and per-estimator overhead: ~9 ms for a 200-tree forest
whether it predicts 1 row or 64), so predicting the rows of concurrent requests together
multiplies throughput where compiling the model (ONNX) is not possible.

How a single-row request is answered:

1. The request handler announces the row (:meth:`MicroBatcher.row_arriving`), validates it
   (a malformed row never enters the queue), then awaits :meth:`MicroBatcher.infer`, which
   queues the row with a future.
2. A batch is dispatched when ``BATCH_MAX_SIZE`` rows are queued, when the oldest queued row
   has waited ``BATCH_MAX_WAIT_MS``, or at once when no other announced row is still being
   read: a lone request never waits for company that is not coming. One batch runs at a
   time (the worker has one core's worth of GIL); rows arriving meanwhile queue for the next
   batch, which is how batches grow with load.
3. The batch is one backend call (inline when measured under ~50 us, else in the thread
   pool). If it raises, each row is retried alone so only the failing row's request fails.
   The hooks (metrics, drift monitoring) see every answered row, once per backend call.
4. Each request gets its own answer from its own future. A request that gave up (timeout)
   simply leaves its future unread.

Shutdown (:meth:`stop`, from the lifespan, after uvicorn stopped taking requests) dispatches
whatever is queued at once and waits for it: no accepted request is dropped.

Metrics: ``serve_batch_size`` (rows per batched backend call) and
``serve_batch_queue_wait_seconds`` (time each row waited in the queue).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from loguru import logger
from prometheus_client import CollectorRegistry, Histogram

from src.serve.backends.base import Prediction, Row
from src.serve.hooks import HookRegistry
from src.serve.inference import InferenceService
from src.serve.loaded_model import LoadedModel

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
QUEUE_WAIT_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip


@dataclass(eq=False)
class _Pending:
    """One queued row and the future its request awaits."""

    model: LoadedModel
    row: Row
    future: asyncio.Future[Prediction]
    queued_at: float = field(default_factory=time.perf_counter)


class BatchMetrics:
    """The two batching histograms, registered in the service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.batch_size = Histogram(
            "serve_batch_size",
            "Rows per batched backend call (micro-batching of single-row /predict calls).",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.queue_wait = Histogram(
            "serve_batch_queue_wait_seconds",
            "Time a /predict row waited in the micro-batching queue before its batch started.",
            buckets=QUEUE_WAIT_BUCKETS,
            registry=registry,
        )


class MicroBatcher(InferenceService):
    """See the module docstring. Lives on one event loop (the worker's)."""

    def __init__(
        self,
        hooks: HookRegistry,
        *,
        max_size: int,
        max_wait_seconds: float,
        metrics: BatchMetrics | None = None,
        threads: int = 1,
    ) -> None:
        super().__init__(hooks, threads=threads)
        if max_size < 2:
            raise ValueError("a micro-batcher needs max_size >= 2 (1 means batching is off)")
        self.max_size = max_size
        self.max_wait = max_wait_seconds
        self.metrics = metrics
        #: Single-row requests announced by :meth:`row_arriving` whose row is not read yet.
        self._arriving = 0
        self._queue: list[_Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[None] | None = None
        self._stopping = False

    def row_arriving(self) -> None:
        """Count a single-row request on its way: queued rows may wait for it."""
        self._arriving += 1

    def row_arrived(self) -> None:
        """The announced row was read (it is queued next, or its request failed)."""
        self._arriving -= 1

    async def infer(self, model: LoadedModel, rows: Sequence[Row]) -> list[Prediction]:
        """Queue a single row for the next batch; anything else is predicted directly."""
        if len(rows) != 1 or self._stopping:
            return await super().infer(model, rows)
        loop = asyncio.get_running_loop()
        pending = _Pending(model, rows[0], loop.create_future())
        self._queue.append(pending)
        self._maybe_dispatch()
        return [await pending.future]

    # --- scheduling ---------------------------------------------------------------------------

    def _maybe_dispatch(self) -> None:
        """Start a batch now if one is due, else make sure a timer will start it."""
        if self._running is not None or not self._queue:
            return  # the running batch dispatches the next one when it ends
        waited = time.perf_counter() - self._queue[0].queued_at
        if (
            len(self._queue) >= self.max_size
            or self._arriving <= 0
            or waited >= self.max_wait
            or self._stopping
        ):
            self._dispatch()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                self.max_wait - waited, self._on_timer
            )

    def _on_timer(self) -> None:
        self._timer = None
        if self._running is None and self._queue:
            self._dispatch()

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = [p for p in self._queue[: self.max_size] if not p.future.done()]
        del self._queue[: self.max_size]
        if not batch:
            self._maybe_dispatch()
            return
        self._running = asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: list[_Pending]) -> None:
        try:
            started = time.perf_counter()
            # Rows of one batch normally share one model; a hot swap can split a batch.
            by_model: dict[int, list[_Pending]] = {}
            for pending in batch:
                by_model.setdefault(id(pending.model), []).append(pending)
                if self.metrics is not None:
                    self.metrics.queue_wait.observe(started - pending.queued_at)
            for group in by_model.values():
                await self._predict_group(group)
        finally:
            self._running = None
            self._maybe_dispatch()

    async def _predict_group(self, group: list[_Pending]) -> None:
        model = group[0].model
        rows = [p.row for p in group]
        if self.metrics is not None:
            self.metrics.batch_size.observe(len(rows))
        try:
            if len(rows) <= model.inline_max_rows:
                results = self._predict_isolated(model, rows)
            else:
                results = await self.run_in_thread(model, self._predict_isolated, model, rows)
        except asyncio.CancelledError:
            for pending in group:
                pending.future.cancel()
            raise
        except Exception as exc:  # pragma: no cover - _predict_isolated catches backend errors
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        for pending, result in zip(group, results, strict=True):
            if pending.future.done():  # the request gave up (timeout)
                continue
            if isinstance(result, BaseException):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)

    def _predict_isolated(
        self, model: LoadedModel, rows: list[Row]
    ) -> list[Prediction | BaseException]:
        """One backend call for all rows; if it raises, each row alone (runs in a thread)."""
        try:
            predictions = model.backend.predict(rows)
            if len(predictions) != len(rows):
                raise RuntimeError(
                    f"backend answered {len(predictions)} rows for {len(rows)}"
                )  # pragma: no cover - a backend contract violation
        except Exception as batch_error:
            logger.warning(
                "batched prediction of {} rows failed ({}); predicting them one by one",
                len(rows),
                type(batch_error).__name__,
            )
            return self._predict_one_by_one(model, rows)
        self.hooks.predictions(model, rows, predictions)
        return list(predictions)

    def _predict_one_by_one(
        self, model: LoadedModel, rows: list[Row]
    ) -> list[Prediction | BaseException]:
        results: list[Prediction | BaseException] = []
        good_rows: list[Row] = []
        good: list[Prediction] = []
        for row in rows:
            try:
                (prediction,) = model.backend.predict([row])
            except Exception as exc:
                results.append(exc)
                continue
            results.append(prediction)
            good_rows.append(row)
            good.append(prediction)
        if good:
            self.hooks.predictions(model, good_rows, good)
        return results

    # --- lifecycle ----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Predict everything still queued, wait for it, then pass rows straight through."""
        self._stopping = True
        while self._queue or self._running is not None:
            if self._running is None:
                self._dispatch()
            running = self._running
            if running is not None:
                await asyncio.wait([running])
        await super().stop()
