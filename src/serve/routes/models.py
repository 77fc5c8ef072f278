"""The served models by name: ``GET /models``, ``GET /models/{name}`` and
``POST /models/{name}/predict(/batch)``. The service answers the two POST paths with the lean
adapter (``lean_predict.py``); these routes document them in /openapi.json and answer what the
lean dispatch does not take (like ``predict.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from src.serve.api_models import (
    BatchPredictResponse,
    ModelInfoResponse,
    ModelsResponse,
    PredictResponse,
)
from src.serve.deps import API_KEY, KEY_SCHEMES, DataPlaneDep, ServeStateDep
from src.serve.fleet import ModelFleet
from src.serve.model_store import ModelStore
from src.serve.routes.model import model_payload
from src.serve.routes.responses import AUTH_ERRORS, PREDICT_ERRORS, error_doc, json_response

router = APIRouter(prefix="/models", tags=["models"])
NOT_SERVED = {404: error_doc("No model of this name is served here.")}


def model_status(store: ModelStore, *, default: bool) -> dict[str, Any]:
    """One model's entry of ``GET /models`` (and of ``GET /health``)."""
    model = store.current
    return {
        "name": store.spec.name,
        "default": default,
        "follows": store.spec.follows,
        "ready": model is not None,
        "version": model.version if model is not None else None,
        "backend": model.backend.name if model is not None else None,
        "reason": store.last_error,
    }


def fleet_status(fleet: ModelFleet) -> list[dict[str, Any]]:
    """Every served model's status, the default one first."""
    return [model_status(store, default=store is fleet.default) for store in fleet.stores]


@router.get(
    "",
    response_model=ModelsResponse,
    dependencies=API_KEY,
    responses=AUTH_ERRORS,
    summary="Served models and their readiness",
)
async def list_models(state: ServeStateDep) -> Response:
    """Each model: name, the version serving, what it follows (LATEST or an alias), backend,
    and ready or the reason it is not."""
    return json_response({"models": fleet_status(state.fleet), "api_version": state.api_version})


@router.get(
    "/{name}",
    response_model=ModelInfoResponse,
    dependencies=API_KEY,
    responses={**AUTH_ERRORS, **NOT_SERVED, 503: error_doc("This model is not loaded.")},
    summary="One served model's metadata",
)
async def model_info(name: str, request: Request, dataplane: DataPlaneDep) -> Response:
    """What ``GET /model`` answers for the default model, for the model ``name``."""
    model = dataplane.ready_model(request.scope, name)
    return json_response(model_payload(model, dataplane.state.api_version))


@router.post(
    "/{name}/predict",
    response_model=PredictResponse,
    dependencies=KEY_SCHEMES,
    responses={**PREDICT_ERRORS, **NOT_SERVED},
    summary="Predict one record with the model name",
)
async def predict(name: str, request: Request, dataplane: DataPlaneDep) -> Response:
    """``POST /predict`` for the model ``name`` (same body and answer)."""
    body = await dataplane.predict(request.scope, request.receive, name)
    return Response(body, media_type="application/json")


@router.post(
    "/{name}/predict/batch",
    response_model=BatchPredictResponse,
    dependencies=KEY_SCHEMES,
    responses={**PREDICT_ERRORS, **NOT_SERVED},
    summary="Predict a batch of records with the model name",
)
async def predict_batch(name: str, request: Request, dataplane: DataPlaneDep) -> Response:
    """``POST /predict/batch`` for the model ``name`` (same body and answer)."""
    body = await dataplane.predict_batch(request.scope, request.receive, name)
    return Response(body, media_type="application/json")
