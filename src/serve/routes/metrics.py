"""GET /metrics: Prometheus text format (API key required only when METRICS_AUTH is true)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from src.serve.deps import API_KEY, ServeStateDep
from src.serve.routes.responses import AUTH_ERRORS


def build_router(metrics_auth: bool) -> APIRouter:
    """The /metrics router, authenticated or not."""
    router = APIRouter(
        tags=["metrics"],
        dependencies=API_KEY if metrics_auth else [],
    )

    @router.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {}}, "description": "Prometheus text format."},
            **(AUTH_ERRORS if metrics_auth else {}),
        },
        summary="Prometheus metrics",
    )
    async def metrics(state: ServeStateDep) -> Response:
        """Request counts and latencies, predictions by class, model info, failures."""
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    return router
