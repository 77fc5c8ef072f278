"""What the routes answer besides the data plane's bytes: JSON responses, and the error
responses they document in /openapi.json."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from src.serve.api_models import ErrorResponse


def json_response(payload: Any, status_code: int = 200) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(payload), status_code=status_code, media_type="application/json")


def error_doc(description: str) -> dict[str, Any]:
    """One documented error response (the standard error body)."""
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
