"""GET /monitoring (API key) and GET /monitoring/window (admin key): the live drift monitor.

See docs/monitoring.md for the JSON shape and how to read it. Snapshots are computed in the
thread pool (never on the event loop) and cached for ``MONITORING_CACHE_SECONDS``.
"""

from __future__ import annotations

import csv
import io
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from src.serve.auth import require_admin_key, require_api_key
from src.serve.errors import NotFoundError, ServeError
from src.serve.monitoring.service import MonitoringService
from src.serve.monitoring.window import ModelMonitor
from src.serve.routes.common import (
    AUTH_ERRORS,
    current_model,
    error_doc,
    json_response,
    serve_state,
)

router = APIRouter(prefix="/monitoring", tags=["monitoring"])
MONITORING_ERRORS = {
    **AUTH_ERRORS,
    404: error_doc("Monitoring is disabled (MONITORING_ENABLED=false)."),
    503: error_doc("No model loaded, or the model's metadata cannot be monitored."),
}


class MonitoringUnavailableError(ServeError):
    """The serving model has no monitor (its reference statistics are unusable)."""

    status_code = 503
    code = "monitoring_unavailable"


def _monitor(request: Request) -> ModelMonitor:
    service: MonitoringService | None = getattr(serve_state(request), "monitoring", None)
    if service is None:
        raise NotFoundError("Monitoring is disabled on this server (MONITORING_ENABLED=false).")
    model = current_model(request)  # 503 when no model is loaded
    monitor = service.monitor
    if monitor is None or monitor.model_version != model.version:
        raise MonitoringUnavailableError(
            f"Model {model.name} {model.version} is not monitored: its metadata lacks usable "
            "reference statistics (see the service log)."
        )
    return monitor


@router.get(
    "",
    dependencies=[Depends(require_api_key)],
    responses=MONITORING_ERRORS,
    summary="Drift and data quality of recent inputs",
)
async def monitoring(
    request: Request,
    histograms: bool = Query(False, description="Include per-bin reference/current fractions."),
) -> Response:
    """Per-feature PSI and status against the training reference, data-quality counts
    (window and cumulative) and the predicted-class distribution, over the last
    ``MONITORING_WINDOW`` rows this worker answered.
    """
    monitor = _monitor(request)
    snapshot = await run_in_threadpool(monitor.snapshot, histograms=histograms)
    return json_response(snapshot)


@router.get(
    "/window",
    dependencies=[Depends(require_admin_key)],
    responses={
        200: {
            "description": "The window as JSON, or as CSV with `format=csv`.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **MONITORING_ERRORS,
    },
    summary="Export the monitoring window (admin)",
)
async def monitoring_window(
    request: Request,
    export_format: Literal["json", "csv"] = Query(
        "json", alias="format", description="json or csv"
    ),
) -> Response:
    """The window's rows (oldest first) with their predictions, in the format
    ``python -m src.serve.monitoring.report --input`` reads. Admin key only: these are raw
    recent inputs of every client.
    """
    monitor = _monitor(request)
    exported = await run_in_threadpool(monitor.export_window)
    if export_format == "json":
        return json_response(exported)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(exported["columns"])
    writer.writerows(["" if v is None else v for v in row] for row in exported["rows"])
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="monitoring-window.csv"'},
    )
