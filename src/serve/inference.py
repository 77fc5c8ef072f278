"""The one call path from a route to the backend: off the event loop, then the hooks.

Routes never call a backend directly; they ``await infer(...)``. Micro-batching (issue 8)
replaces the body of :func:`infer` without touching the routes.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from src.serve.hooks import HookRegistry
from src.serve.model_store import LoadedModel
from src.serve.predictor import Prediction, Row


def predict_and_notify(
    model: LoadedModel, rows: Sequence[Row], hooks: HookRegistry
) -> list[Prediction]:
    """Predict ``rows`` with ``model`` and tell the hooks (runs in a worker thread)."""
    predictions = model.backend.predict(rows)
    hooks.predictions(model, rows, predictions)
    return predictions


async def infer(model: LoadedModel, rows: Sequence[Row], hooks: HookRegistry) -> list[Prediction]:
    """Predict in the thread pool so CPU work never blocks the event loop."""
    return await run_in_threadpool(predict_and_notify, model, rows, hooks)
