"""One exception hierarchy for the service, and the one place that turns errors into responses.

Every error a client can see is a :class:`ServeError` subclass carrying its HTTP status and a
stable machine-readable ``code``. Responses always have the shape::

    {"error": {"code": "...", "message": "...", "details": [...]?}, "request_id": "..."}

Clients never see exception class names or tracebacks: unexpected exceptions become a generic
500 (logged with the traceback server-side by the middleware).

Under ``/v2`` (the Open Inference Protocol, ``src/serve/oip/``) the same errors are rendered the
protocol's way, here and nowhere else: the body is ``{"error": "<message>"}``, and invalid
input (422 on our own routes) answers 400, as the protocol asks; every other status is kept
(401, 403, 404, 413, 415, 429, 503, 504). The ``X-Request-ID`` header still names the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

MAX_ERROR_DETAILS = 10
MAX_LOC_PART_CHARS = 64


class ServeError(Exception):
    """Base class: an error with an HTTP status, a stable code and a client-safe message."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "Internal server error."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = list(details) if details else None
        self.headers = dict(headers or {})
        super().__init__(self.message)


class InvalidInputError(ServeError):
    """The request body does not match the loaded model's input schema."""

    status_code = 422
    code = "invalid_input"
    default_message = "Invalid input."


class UnscorableInputError(InvalidInputError):
    """Valid input the model cannot score: its output was not finite (NaN/inf)."""

    code = "unscorable_input"
    default_message = (
        "The model cannot score this input: it produced a non-finite result. Send values "
        "closer to the range the model was trained on."
    )


class InvalidJSONError(InvalidInputError):
    """The request body is not parseable JSON."""

    code = "invalid_json"
    default_message = "Request body is not valid JSON."


class PayloadTooLargeError(ServeError):
    """The request body is larger than ``MAX_BODY_BYTES``."""

    status_code = 413
    code = "payload_too_large"
    default_message = "Request body is too large."


class TooManyRowsError(PayloadTooLargeError):
    """A batch holds more than ``MAX_BATCH_ROWS`` records."""

    code = "too_many_rows"
    default_message = "Too many records in the batch."


class UnsupportedMediaTypeError(ServeError):
    """The request body is not declared as JSON."""

    status_code = 415
    code = "unsupported_media_type"
    default_message = "Request body must be JSON (Content-Type: application/json)."


class UnauthorizedError(ServeError):
    """No API key was presented."""

    status_code = 401
    code = "unauthorized"
    default_message = "Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(ServeError):
    """An API key was presented but it is not valid for this endpoint."""

    status_code = 403
    code = "forbidden"
    default_message = "Invalid API key."


class NotFoundError(ServeError):
    """No such resource."""

    status_code = 404
    code = "not_found"
    default_message = "Not found."


class ModelNotReadyError(ServeError):
    """No model is loaded yet (or none could be loaded)."""

    status_code = 503
    code = "model_not_ready"
    default_message = "No model is loaded."


class MonitoringUnavailableError(ServeError):
    """The serving model has no drift monitor (its reference statistics are unusable)."""

    status_code = 503
    code = "monitoring_unavailable"
    default_message = "The serving model is not monitored."


class FeedbackUnavailableError(ServeError):
    """The shared feedback index could not be written in time (another process holds it)."""

    status_code = 503
    code = "feedback_unavailable"
    default_message = "The feedback index is busy; retry shortly."


class ReloadFailedError(ServeError):
    """An admin-triggered reload refused the new version; the previous model keeps serving."""

    status_code = 409
    code = "reload_failed"
    default_message = "The new model version was refused; the previous one keeps serving."


class RateLimitedError(ServeError):
    """The API key used up its token bucket (``RATE_LIMIT_PER_MINUTE``); carries Retry-After."""

    status_code = 429
    code = "rate_limited"
    default_message = "Too many requests for this API key."


class RequestTimeoutError(ServeError):
    """The response did not start within ``REQUEST_TIMEOUT_SECONDS``."""

    status_code = 504
    code = "request_timeout"
    default_message = "The request took too long and was abandoned."


# --- artifact faults (raised while loading; shown to clients only as a 503/409 reason) ---------


class ArtifactError(ServeError):
    """A published artifact cannot be served. ``code`` doubles as the bounded metrics label."""

    status_code = 503
    code = "artifact_error"
    default_message = "The model artifact cannot be served."


class ArtifactNotFoundError(ArtifactError):
    """No artifact (or no ``LATEST`` pointer, or a pinned version that does not exist)."""

    code = "artifact_not_found"


class InvalidArtifactError(ArtifactError):
    """Metadata is missing, unreadable or does not follow docs/artifact.md."""

    code = "artifact_invalid"


class IntegrityError(ArtifactError):
    """The model file does not match the size/sha256 recorded in its metadata."""

    code = "artifact_integrity"


class IncompatibleArtifactError(ArtifactError):
    """Schema or library versions this server cannot honour, or an unusable model object."""

    code = "artifact_incompatible"


class ModelLoadError(ArtifactError):
    """Deserialising or warming up the model failed for another reason (see the server log)."""

    code = "artifact_load_failed"


class UnsignedArtifactError(ArtifactError):
    """No ``signature.json`` and ``ALLOW_UNSIGNED`` is not set (see src/serve/signing.py)."""

    code = "artifact_unsigned"


class SignatureInvalidError(ArtifactError):
    """The signature does not verify: tampered files, a wrong or unknown key, a bad document."""

    code = "artifact_signature_invalid"


# --- rendering ----------------------------------------------------------------------------------

#: Codes of the HTTP errors Starlette and FastAPI raise themselves (unknown path, method...).
_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    405: "method_not_allowed",
    **{
        cls.status_code: cls.code
        for cls in (
            NotFoundError,
            PayloadTooLargeError,
            UnsupportedMediaTypeError,
            InvalidInputError,
        )
    },
}


#: Paths under this prefix speak the Open Inference Protocol (see the module docstring).
OIP_PATH_PREFIX = "/v2"


def speaks_oip(path: str | None) -> bool:
    """True for the Open Inference Protocol's paths (``/v2`` and below)."""
    return path is not None and (path == OIP_PATH_PREFIX or path.startswith(OIP_PATH_PREFIX + "/"))


def oip_error_response(
    status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """The protocol's error: ``{"error": message}``; invalid input (422) answers 400."""
    return Response(
        content=orjson.dumps({"error": message}),
        status_code=400 if status_code == 422 else status_code,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def request_id_of(request: Request) -> str | None:
    """The request id the request-context middleware assigned (``scope["state"]``)."""
    state = request.scope.get("state") or {}
    return state.get("request_id")


def error_body(
    code: str,
    message: str,
    request_id: str | None,
    details: Sequence[Mapping[str, str]] | None = None,
) -> bytes:
    """Serialise the standard error body."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = list(details)
    return orjson.dumps({"error": error, "request_id": request_id})


def error_response(
    status_code: int,
    code: str,
    message: str,
    request_id: str | None,
    *,
    details: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    path: str | None = None,
) -> Response:
    """Build the standard JSON error response (the protocol's one when ``path`` is under
    ``/v2``)."""
    if speaks_oip(path):
        return oip_error_response(status_code, message, headers)
    return Response(
        content=error_body(code, message, request_id, details),
        status_code=status_code,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def render_serve_error(
    exc: ServeError, request_id: str | None, path: str | None = None
) -> Response:
    """The response for a :class:`ServeError` raised while answering ``path``."""
    return error_response(
        exc.status_code,
        exc.code,
        exc.message,
        request_id,
        details=exc.details,
        headers=exc.headers,
        path=path,
    )


def _safe_loc_part(part: object) -> str:
    text = str(part)
    if len(text) > MAX_LOC_PART_CHARS:
        text = text[:MAX_LOC_PART_CHARS] + "..."
    # Field names come from the client (extra keys): never echo control characters.
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


def format_loc(loc: Sequence[object]) -> str:
    """``("records", 3, "sepal_length")`` -> ``records[3].sepal_length``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _safe_loc_part(part)
    return out or "body"


def validation_details(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Readable, bounded per-field details from pydantic errors (never echoes the input)."""
    details = []
    for err in errors[:MAX_ERROR_DETAILS]:
        loc = [p for p in err.get("loc", ()) if p not in ("body",)]
        message = str(err.get("msg", "invalid value"))
        if err.get("type") == "extra_forbidden":
            message = "Unexpected field (not an input of this model)"
        details.append({"field": format_loc(loc), "message": message})
    return details


def validation_message(details: Sequence[Mapping[str, str]], total: int) -> str:
    """One human-readable sentence summarising the per-field details."""
    parts = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    more = f" (and {total - len(details)} more)" if total > len(details) else ""
    return f"Invalid input: {parts}{more}."


FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; unexpected exceptions are handled by the middleware."""

    async def serve_error_handler(request: Request, exc: ServeError) -> Response:
        return render_serve_error(exc, request_id_of(request), request.scope.get("path"))

    async def validation_handler(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        details = validation_details(errors)
        return error_response(
            422,
            InvalidInputError.code,
            validation_message(details, len(errors)),
            request_id_of(request),
            details=details,
            path=request.scope.get("path"),
        )

    async def http_exception_handler(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR:
            # FastAPI's answer to an undecodable body on a route that declares one: the same
            # 422 invalid_json as the data plane's own JSON check.
            return render_serve_error(
                InvalidJSONError("Request body is not valid JSON."), request_id_of(request)
            )
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error."
        if exc.status_code == 404:
            message = "Not found: no such endpoint (see /docs)."
        return error_response(
            exc.status_code,
            code,
            message,
            request_id_of(request),
            headers=exc.headers,
            path=request.scope.get("path"),
        )

    app.add_exception_handler(ServeError, serve_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)  # type: ignore[arg-type]


# --- backend faults (raised while choosing the backend of a model being loaded) ---------------


class NoOnnxError(IncompatibleArtifactError):
    """The artifact publishes no ``model.onnx`` (a normal case: its reason is in metadata)."""


class OnnxUnsupportedError(IncompatibleArtifactError):
    """The published ``model.onnx`` cannot serve this model (the message says why)."""


class SettingsError(Exception):
    """Invalid settings; the message names every bad setting and is safe to print."""
