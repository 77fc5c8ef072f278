"""GET /metrics: Prometheus text format (API key required only when METRICS_AUTH is true)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from src.serve.auth import require_api_key
from src.serve.routes.common import AUTH_ERRORS, serve_state


def build_router(metrics_auth: bool) -> APIRouter:
    """The /metrics router, authenticated or not."""
    router = APIRouter(
        tags=["metrics"],
        dependencies=[Depends(require_api_key)] if metrics_auth else [],
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
    async def metrics(request: Request) -> Response:
        """Request counts and latencies, predictions by class, model info, failures."""
        body, content_type = serve_state(request).metrics.render()
        return Response(body, media_type=content_type)

    return router
