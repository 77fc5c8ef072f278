"""The one call path from a request to a backend: off the event loop (unless the call is
shorter than the hop), then the hooks.

Requests never call a backend directly; they ``await state.inference.infer(model, rows)``.
Another strategy (e.g. micro-batching concurrent requests, ``batching.py``) is a subclass of
:class:`InferenceService` created in ``create_app``; the app's lifespan calls its
:meth:`~InferenceService.start` after the model is loaded and :meth:`~InferenceService.stop`
on shutdown (e.g. to drain a queue).
"""

from __future__ import annotations

import types
import weakref
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import anyio.to_thread

from src.serve.backends.base import Prediction, Row
from src.serve.hooks import HookRegistry
from src.serve.loaded_model import LoadedModel

T = TypeVar("T")


@types.coroutine
def step_back() -> Generator[None, None, None]:
    """Await it to give the event loop one turn: ``asyncio.sleep(0)`` without the coroutine
    ``sleep`` itself wraps around this same bare ``yield``."""
    yield


class InferenceService:
    """Predict each request's rows in the thread pool, then notify the hooks.

    At most ``threads`` predictions of one model run at once (``INFERENCE_THREADS``, default
    1): the GIL lets one thread run Python at a time anyway, and several threads fighting for
    it made 1,000-row batches 1.5x more expensive (docs/performance.md). Further calls wait
    their turn. Each loaded model has its own slots, so after a hot swap the new model is never
    held up by calls still running on the old one.
    """

    def __init__(self, hooks: HookRegistry, *, threads: int = 1) -> None:
        self.hooks = hooks
        self.threads = threads
        self._limiters: weakref.WeakKeyDictionary[LoadedModel, anyio.CapacityLimiter] = (
            weakref.WeakKeyDictionary()
        )

    async def run_in_thread(self, model: LoadedModel, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in a worker thread, at most ``threads`` at a time for ``model``;
        cancellable (the caller stops waiting, the thread finishes on its own)."""
        limiter = self._limiters.get(model)
        if limiter is None:  # created in the running event loop (anyio needs one)
            limiter = self._limiters[model] = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(func, *args, abandon_on_cancel=True, limiter=limiter)

    def predict_and_notify(self, model: LoadedModel, rows: Sequence[Row]) -> list[Prediction]:
        """Predict ``rows`` with ``model`` and tell the hooks (runs in a worker thread)."""
        predictions = model.backend.predict(rows)
        self.hooks.predictions(model, rows, predictions)
        return predictions

    async def infer(self, model: LoadedModel, rows: Sequence[Row]) -> list[Prediction]:
        """Predict in the thread pool so CPU work never blocks the event loop, except calls
        measured at load to take under ~50 us (``model.inline_max_rows``): those run inline,
        because the hop to a thread costs more CPU than they do (docs/performance.md).

        Cancellable: when the request times out (REQUEST_TIMEOUT_SECONDS) the await returns at
        once and the thread is abandoned (it finishes on its own; threads cannot be killed).
        """
        if len(rows) <= model.inline_max_rows:
            # One step back to the event loop first: a request read, predicted and answered
            # in a single task step starved other connections at saturation (p99 at 64
            # clients 10-20x the median; with this yield about 2-3x, docs/performance.md).
            await step_back()
            return self.predict_and_notify(model, rows)
        return await self.run_in_thread(model, self.predict_and_notify, model, rows)

    def row_arriving(self) -> None:
        """A single-row request has arrived and its row is being read (no-op here).

        Pair every call with one :meth:`row_arrived`. A strategy that waits for company
        (the micro-batcher) uses the announcement to know more rows are on their way.
        """

    def row_arrived(self) -> None:
        """The row announced by :meth:`row_arriving` was parsed or refused (no-op here)."""

    async def start(self) -> None:
        """Called once in the lifespan, after the first model load attempt."""

    async def stop(self) -> None:
        """Called once at shutdown, after the server stopped taking requests."""
