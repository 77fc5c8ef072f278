"""HTTP routes. To add an endpoint: write an ``APIRouter`` module here and include it below."""

from __future__ import annotations

from fastapi import APIRouter

from src.serve.routes import admin, feedback, health, model, models, oip, predict
from src.serve.routes import metrics as metrics_route
from src.serve.routes import monitoring as monitoring_route
from src.serve.settings import Settings


def build_api_router(settings: Settings) -> APIRouter:
    """Every route of the service."""
    router = APIRouter()
    router.include_router(health.router)
    router.include_router(predict.router)
    router.include_router(model.router)
    router.include_router(models.router)
    router.include_router(admin.router)
    router.include_router(metrics_route.build_router(settings.metrics_auth))
    router.include_router(monitoring_route.router)
    router.include_router(feedback.router)
    router.include_router(oip.router)
    return router
