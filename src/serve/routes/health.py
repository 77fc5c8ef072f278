"""GET /health (readiness) and GET /health/live (liveness); both unauthenticated."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from src.serve.api_models import HealthResponse, LiveResponse
from src.serve.deps import ServeStateDep
from src.serve.routes.responses import json_response

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "No model loaded (see reason)."}},
    summary="Readiness",
)
async def health(state: ServeStateDep) -> Response:
    """200 with the served model when ready; 503 with the reason when no model is loaded."""
    model = state.store.current
    if model is None:
        return json_response(
            {
                "status": "not_ready",
                "model_name": state.settings.model_name,
                "model_version": None,
                "api_version": state.api_version,
                "backend": None,
                "reason": state.store.not_ready_reason,
            },
            status_code=503,
        )
    return json_response(
        {
            "status": "ready",
            "model_name": model.name,
            "model_version": model.version,
            "api_version": state.api_version,
            "backend": model.backend.name,
        }
    )


@router.get("/health/live", response_model=LiveResponse, summary="Liveness")
async def live(state: ServeStateDep) -> Response:
    """200 while the process runs (whether or not a model is loaded)."""
    return json_response({"status": "alive", "api_version": state.api_version})
