"""The Open Inference Protocol (KServe V2, REST): health, metadata and inference routes.

Each route only translates: inference is :meth:`DataPlane.infer` with the protocol's codec
(``src/serve/oip/codec.py``); readiness is the data plane's :meth:`DataPlane.ready_model_version`;
errors are rendered the protocol's way by ``errors.py`` (``{"error": "..."}``). Health, server
metadata and model readiness are open like ``/health``; model metadata needs an API key like
``/model``, inference like ``/predict``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from src.serve.dataplane import DataPlane
from src.serve.deps import API_KEY, KEY_SCHEMES, DataPlaneDep, ServeStateDep
from src.serve.oip.api_models import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    OipError,
    ServerMetadata,
)
from src.serve.oip.codec import BINARY_MEDIA_TYPE, OipCodec
from src.serve.oip.metadata import model_metadata, server_metadata
from src.serve.routes.responses import json_response

router = APIRouter(prefix="/v2", tags=["open inference protocol"])
MODEL = "/models/{model_name}"
VERSION = "/models/{model_name}/versions/{model_version}"


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` written in place of each ``$ref`` (a
    ``#/$defs/...`` reference would not resolve inside /openapi.json)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


def _errors(**statuses: str) -> dict[int | str, dict[str, Any]]:
    return {
        int(code[1:]): {"model": OipError, "description": text} for code, text in statuses.items()
    }


NOT_READY = _errors(
    _404="No model of that name, or not that version.",
    _503="The model is not loaded (the reason is in 'error').",
)
KEYED = _errors(_401="No API key.", _403="Wrong API key.", _429="Over RATE_LIMIT_PER_MINUTE.")
INFER_ERRORS = {
    **KEYED,
    **NOT_READY,
    **_errors(
        _400="Invalid request or input (the message names the tensor and row).",
        _413="Body over MAX_BODY_BYTES or rows over MAX_BATCH_ROWS.",
        _415="Body neither JSON nor binary-framed JSON.",
        _504="No answer within REQUEST_TIMEOUT_SECONDS.",
    ),
}
INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_refs(InferenceRequest.model_json_schema())},
            BINARY_MEDIA_TYPE: {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "Binary tensor data extension: the JSON request "
                    "(Inference-Header-Content-Length bytes), then the inputs' binary data.",
                }
            },
        },
    }
}


@router.get(
    "/health/live",
    summary="Server live",
    response_class=Response,
    responses={200: {"description": "Live (empty body)."}},
)
async def server_live() -> Response:
    """200 (empty body) while the process runs."""
    return Response(status_code=200)


@router.get(
    "/health/ready",
    summary="Server ready",
    response_class=Response,
    responses={200: {"description": "Ready (empty body)."}, **NOT_READY},
)
async def server_ready(request: Request, dataplane: DataPlaneDep) -> Response:
    """200 (empty body) when the served model is ready, else 503 with the reason."""
    dataplane.ready_model(request.scope)
    return Response(status_code=200)


@router.get("", response_model=ServerMetadata, summary="Server metadata")
async def server_metadata_route(state: ServeStateDep) -> Response:
    """Name, version and extensions (``binary_tensor_data``)."""
    return json_response(server_metadata(state.api_version))


READY_DOCS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Ready (empty body)."},
    **NOT_READY,
}
METADATA_DOCS: dict[int | str, dict[str, Any]] = {**KEYED, **NOT_READY}


@router.get(MODEL + "/ready", summary="Model ready", response_class=Response, responses=READY_DOCS)
async def model_ready(request: Request, dataplane: DataPlaneDep, model_name: str) -> Response:
    """200 (empty body) when the model is served and ready."""
    dataplane.ready_model_version(request.scope, model_name, None)
    return Response(status_code=200)


@router.get(
    VERSION + "/ready",
    summary="Model version ready",
    response_class=Response,
    responses=READY_DOCS,
)
async def model_version_ready(
    request: Request, dataplane: DataPlaneDep, model_name: str, model_version: str
) -> Response:
    """200 (empty body) when this version of the model is the one served, and ready."""
    dataplane.ready_model_version(request.scope, model_name, model_version)
    return Response(status_code=200)


@router.get(
    MODEL,
    response_model=ModelMetadata,
    summary="Model metadata",
    dependencies=API_KEY,
    responses=METADATA_DOCS,
)
async def model_metadata_route(
    request: Request, dataplane: DataPlaneDep, model_name: str
) -> Response:
    """Inputs (one per feature, in feature order), outputs, platform (the backend), task and
    class order."""
    return json_response(
        model_metadata(dataplane.ready_model_version(request.scope, model_name, None))
    )


@router.get(
    VERSION,
    response_model=ModelMetadata,
    summary="Model version metadata",
    dependencies=API_KEY,
    responses=METADATA_DOCS,
)
async def model_version_metadata(
    request: Request, dataplane: DataPlaneDep, model_name: str, model_version: str
) -> Response:
    """As ``GET /v2/models/{model_name}``, for the version being served (else 404)."""
    model = dataplane.ready_model_version(request.scope, model_name, model_version)
    return json_response(model_metadata(model))


@router.post(
    MODEL + "/infer",
    response_model=InferenceResponse,
    summary="Inference",
    dependencies=KEY_SCHEMES,
    openapi_extra=INFER_BODY,
    responses=INFER_ERRORS,
)
async def infer(request: Request, dataplane: DataPlaneDep, model_name: str) -> Response:
    """One inference request: JSON, or with the binary tensor data extension (see
    docs/serving.md for the input layouts)."""
    return await _infer(request, dataplane, model_name, None)


@router.post(
    VERSION + "/infer",
    response_model=InferenceResponse,
    summary="Inference on a version",
    dependencies=KEY_SCHEMES,
    openapi_extra=INFER_BODY,
    responses=INFER_ERRORS,
)
async def infer_version(
    request: Request, dataplane: DataPlaneDep, model_name: str, model_version: str
) -> Response:
    """As ``POST /v2/models/{model_name}/infer``, by the version being served (else 404)."""
    return await _infer(request, dataplane, model_name, model_version)


async def _infer(
    request: Request, dataplane: DataPlane, model_name: str, model_version: str | None
) -> Response:
    codec = OipCodec(request.app.state.serve.settings.max_batch_rows)
    answer = await dataplane.infer(request.scope, request.receive, codec, model_name, model_version)
    if answer.json_length is None:
        return Response(answer.body, media_type="application/json")
    return Response(
        answer.body,
        media_type=BINARY_MEDIA_TYPE,
        headers={"Inference-Header-Content-Length": str(answer.json_length)},
    )
