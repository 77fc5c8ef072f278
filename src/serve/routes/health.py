"""GET /health (readiness) and GET /health/live (liveness); both unauthenticated."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from src.serve.api_models import HealthResponse, LiveResponse
from src.serve.deps import ServeStateDep
from src.serve.routes.models import fleet_status
from src.serve.routes.responses import json_response

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "No model loaded (see reason)."}},
    summary="Readiness",
)
async def health(state: ServeStateDep) -> Response:
    """200 when the default model (the one behind /predict) is serving, else 503 with the
    reason; ``models`` lists every served model's readiness (a model other than the default
    one that is not ready does not make the service unready: the others keep serving)."""
    model = state.store.current
    models = fleet_status(state.fleet)
    if model is None:
        return json_response(
            {
                "status": "not_ready",
                "model_name": state.settings.model_name,
                "model_version": None,
                "api_version": state.api_version,
                "backend": None,
                "reason": state.store.not_ready_reason,
                "models": models,
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
            "models": models,
        }
    )


@router.get("/health/live", response_model=LiveResponse, summary="Liveness")
async def live(state: ServeStateDep) -> Response:
    """200 while the process runs (whether or not a model is loaded)."""
    return json_response({"status": "alive", "api_version": state.api_version})
