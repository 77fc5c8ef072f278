"""Helpers shared by the routes: state access, JSON in/out, readiness, documented errors."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from src.serve.errors import (
    InvalidJSONError,
    ModelNotReadyError,
    UnsupportedMediaTypeError,
    request_id_of,
)
from src.serve.loaded_model import LoadedModel
from src.serve.schemas import ErrorResponse
from src.serve.state import ServeState

MAX_SHOWN_MEDIA_TYPE = 64


def error_doc(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error_doc("No API key (response carries WWW-Authenticate: Bearer)."),
    403: error_doc("Wrong API key."),
    429: {
        **error_doc("This API key is over RATE_LIMIT_PER_MINUTE (only when it is set)."),
        "headers": {
            "Retry-After": {
                "description": "Seconds until the key may send again.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
}
PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    413: error_doc("Body over MAX_BODY_BYTES, or a batch over MAX_BATCH_ROWS."),
    415: error_doc("Body not declared as JSON."),
    422: error_doc("Invalid JSON or input not matching the model's features."),
    503: error_doc("No model loaded yet."),
    504: error_doc("No answer within REQUEST_TIMEOUT_SECONDS."),
}


def serve_state(request: Request) -> ServeState:
    """The app's shared objects."""
    return request.app.state.serve


def request_id(request: Request) -> str:
    """The id the middleware assigned to this request."""
    return request_id_of(request) or ""


def current_model(request: Request) -> LoadedModel:
    """The serving model (pinned for this request), or 503 with the reason."""
    store = serve_state(request).store
    model = store.current
    if model is None:
        raise ModelNotReadyError(f"No model is loaded: {store.not_ready_reason}.")
    request.scope["state"]["model_version"] = model.version
    return model


def json_response(payload: Any, status_code: int = 200) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(payload), status_code=status_code, media_type="application/json")


def _is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def check_json_content_type(content_type: str | None) -> None:
    """415 unless the declared media type is JSON (a missing Content-Type counts as JSON)."""
    if content_type is not None and not _is_json_media_type(content_type):
        media = content_type.split(";", 1)[0].strip()
        shown = f" {media!r}" if len(media) <= MAX_SHOWN_MEDIA_TYPE and media.isprintable() else ""
        raise UnsupportedMediaTypeError(
            f"Content-Type{shown} is not supported: send a JSON body with "
            "'Content-Type: application/json'."
        )


def parse_json_body(body: bytes) -> Any:
    """The body parsed with orjson; 422 when empty or not JSON."""
    if not body.strip():
        raise InvalidJSONError("Request body is empty: send a JSON object.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSONError(f"Request body is not valid JSON: {exc}.") from None


async def read_json(request: Request) -> Any:
    """Parse the body as JSON (orjson): 415 when declared as something else, 422 when invalid.

    A request without Content-Type is treated as JSON. (The lean /predict path in
    ``fast_path.py`` applies the same two checks.)
    """
    check_json_content_type(request.headers.get("content-type"))
    return parse_json_body(await request.body())
