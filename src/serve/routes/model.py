"""GET /model: metadata of the model being served (authenticated like predictions)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from src.serve.api_models import ModelInfoResponse
from src.serve.deps import API_KEY, CurrentModelDep, ServeStateDep
from src.serve.loaded_model import LoadedModel
from src.serve.routes.responses import AUTH_ERRORS, error_doc, json_response

router = APIRouter(tags=["model"], dependencies=API_KEY)

# Served as-is from metadata.json (reference statistics are left out: large and internal).
COPIED_FIELDS = (
    "task",
    "trainer_class",
    "created_at",
    "features",
    "metrics",
    "data",
    "versions",
    "run",
    "model_file",
    "onnx",
    "signing",
)


@router.get(
    "/model",
    response_model=ModelInfoResponse,
    responses={**AUTH_ERRORS, 503: error_doc("No model loaded yet.")},
    summary="Loaded model metadata",
)
async def model_info(model: CurrentModelDep, state: ServeStateDep) -> Response:
    """Features, classes, test metrics, training time, versions and backend of the model."""
    return json_response(model_payload(model, state.api_version))


def model_payload(model: LoadedModel, api_version: str) -> dict[str, Any]:
    """The ``GET /model`` body of one loaded model."""
    raw = model.raw_metadata
    payload = {field: raw.get(field) for field in COPIED_FIELDS}
    target = raw.get("target") or {}
    payload.update(
        model_name=model.name,
        model_version=model.version,
        backend=model.backend.name,
        loaded_at=model.loaded_at_iso,
        target={"name": target.get("name"), "classes": target.get("classes")},
        api_version=api_version,
    )
    return payload
