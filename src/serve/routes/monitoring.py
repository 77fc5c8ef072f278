"""GET /monitoring (API key) and GET /monitoring/window (admin key): the live drift monitor.

See docs/monitoring.md for the JSON shape and how to read it. Snapshots are computed in the
thread pool (never on the event loop) and cached for ``MONITORING_CACHE_SECONDS``.
"""

from __future__ import annotations

import csv
import io
from typing import Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from src.serve.dataplane import DataPlane
from src.serve.deps import ADMIN_KEY, API_KEY, DataPlaneDep, ServeStateDep
from src.serve.errors import MonitoringUnavailableError, NotFoundError
from src.serve.monitoring.window import ModelMonitor
from src.serve.routes.responses import AUTH_ERRORS, error_doc, json_response
from src.serve.state import ServeState

router = APIRouter(prefix="/monitoring", tags=["monitoring"])
MONITORING_ERRORS = {
    **AUTH_ERRORS,
    404: error_doc("Monitoring is disabled (MONITORING_ENABLED=false)."),
    503: error_doc("No model loaded, or the model's metadata cannot be monitored."),
}


def _monitor(request: Request, state: ServeState, dataplane: DataPlane) -> ModelMonitor:
    """The serving model's monitor: 404 when monitoring is off, else 503 without one."""
    service = state.monitoring
    if service is None:
        raise NotFoundError("Monitoring is disabled on this server (MONITORING_ENABLED=false).")
    model = dataplane.ready_model(request.scope)  # 503 when no model is loaded
    monitor = service.monitor
    if monitor is None or monitor.model_version != model.version:
        raise MonitoringUnavailableError(
            f"Model {model.name} {model.version} is not monitored: its metadata lacks usable "
            "reference statistics (see the service log)."
        )
    return monitor


@router.get(
    "",
    dependencies=API_KEY,
    responses=MONITORING_ERRORS,
    summary="Drift and data quality of recent inputs",
)
async def monitoring(
    request: Request,
    state: ServeStateDep,
    dataplane: DataPlaneDep,
    histograms: bool = Query(False, description="Include per-bin reference/current fractions."),
) -> Response:
    """Per-feature PSI and status against the training reference, data-quality counts
    (window and cumulative) and the predicted-class distribution, over the last
    ``MONITORING_WINDOW`` rows this worker answered.
    """
    monitor = _monitor(request, state, dataplane)
    snapshot = await run_in_threadpool(monitor.snapshot, histograms=histograms)
    if state.prediction_log is not None:  # live quality next to the training figures
        model = dataplane.ready_model(request.scope)
        entries = await run_in_threadpool(state.prediction_log.live_quality, model)
        snapshot = {
            **snapshot,
            "live_quality": next(
                e
                for e in entries
                if e["model_name"] == model.name and e["model_version"] == model.version
            ),
        }
    return json_response(snapshot)


@router.get(
    "/window",
    dependencies=ADMIN_KEY,
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
    state: ServeStateDep,
    dataplane: DataPlaneDep,
    export_format: Literal["json", "csv"] = Query(
        "json", alias="format", description="json or csv"
    ),
) -> Response:
    """The window's rows (oldest first) with their predictions, in the format
    ``python -m src.serve.monitoring.report --input`` reads. Admin key only: these are raw
    recent inputs of every client.
    """
    monitor = _monitor(request, state, dataplane)
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
