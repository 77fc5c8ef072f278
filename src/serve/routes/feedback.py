"""POST /feedback (API key): ground truth for logged predictions, by request id.

Needs the prediction log (``PREDICTION_LOG_ENABLED=true``; else 404). The items go to the
shared feedback index (``predlog/index.py``) off the event loop; the answer lists, per id,
whether it was matched, is waiting for its prediction, was a duplicate or was rejected.
"""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from src.serve.api_models import FeedbackBatch, FeedbackBody, FeedbackResponse
from src.serve.deps import API_KEY, ServeStateDep
from src.serve.errors import FeedbackUnavailableError, NotFoundError, TooManyRowsError
from src.serve.predlog.index import FeedbackItem
from src.serve.routes.responses import AUTH_ERRORS, error_doc, json_response

router = APIRouter(tags=["feedback"])


@router.post(
    "/feedback",
    dependencies=API_KEY,
    response_model=FeedbackResponse,
    responses={
        **AUTH_ERRORS,
        404: error_doc("The prediction log is off (PREDICTION_LOG_ENABLED=false)."),
        413: error_doc("More than MAX_BATCH_ROWS items."),
        422: error_doc("Invalid feedback (each item needs request_id and label or value)."),
        503: error_doc("The feedback index stayed busy; retry."),
    },
    summary="Ground truth for logged predictions",
)
async def feedback(state: ServeStateDep, body: FeedbackBody) -> Response:
    """``{"request_id", "label"}`` (classifiers), ``{"request_id", "value"}`` (regressors) or
    ``{"items": [...]}``. The first feedback per id wins; feedback may come before its
    prediction is logged (it waits ``FEEDBACK_PENDING_SECONDS``)."""
    log = state.prediction_log
    if log is None:
        raise NotFoundError(
            "Feedback needs the prediction log: this server runs with PREDICTION_LOG_ENABLED=false."
        )
    entries = body.items if isinstance(body, FeedbackBatch) else [body]
    if len(entries) > state.settings.max_batch_rows:
        raise TooManyRowsError(
            f"The request has {len(entries)} items; at most {state.settings.max_batch_rows} "
            "are accepted (MAX_BATCH_ROWS)."
        )
    items = [
        FeedbackItem(e.request_id, "label", e.label)
        if e.label is not None
        else FeedbackItem(e.request_id, "value", e.value)
        for e in entries
    ]
    try:
        outcome = await run_in_threadpool(log.feedback, items)
    except sqlite3.OperationalError as exc:
        raise FeedbackUnavailableError(f"The feedback index is busy ({exc}); retry.") from None
    return json_response(
        {
            "received": len(items),
            "matched": outcome.matched,
            "unmatched": outcome.unmatched,
            "duplicates": outcome.duplicates,
            "rejected": outcome.rejected,
        }
    )
