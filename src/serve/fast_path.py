"""The lean path for ``POST /predict`` and ``POST /predict/batch``.

Profiling the service under load (py-spy, docs/performance.md) showed FastAPI's per-request
machinery - routing, dependency injection for the two auth schemes, the ``Request`` and
``Response`` objects and three outer ASGI layers - costing more than an ONNX prediction
itself. These two endpoints carry nearly all traffic, so :class:`ServeApp` (the FastAPI
application class the service uses) hands them to :class:`LeanPredict`, a plain ASGI handler,
*before* FastAPI's own layers. Everything else (health, model, metrics, admin, monitoring,
``/docs`` and ``/openapi.json``, which still documents these two routes from the FastAPI
routes declared in ``routes/predict.py``) goes through FastAPI as before.

Behaviour is the same by construction, not by imitation:

- the lean handler is wrapped in the app's own user middleware stack (``app.user_middleware``,
  built the way Starlette builds it): request id, body limit, headers, access log, metrics,
  security headers and the request time limit apply unchanged;
- it calls the same pieces the FastAPI routes call, in the same order: API-key check
  (:class:`~src.serve.auth.Authenticator`, rate limit included), the current model (503),
  Content-Type and JSON checks (``routes/common.py``), the model's pydantic request schema
  (the same 422 error shape), the inference service (batching included) and the finite-output
  guard; errors are rendered by the same ``render_serve_error``;
- the key is read from the headers exactly as FastAPI's ``HTTPBearer`` and ``APIKeyHeader``
  read them (:func:`presented_key_from_headers`).

Requests the lean path does not handle as-is (another method, a trailing slash, a mounted
``root_path``, FastAPI's native OpenTelemetry switched on) go through FastAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from src.serve.errors import ModelNotReadyError, ServeError, render_serve_error
from src.serve.guards import ensure_finite
from src.serve.routes.common import check_json_content_type, parse_json_body

if TYPE_CHECKING:
    from src.serve.loaded_model import LoadedModel
    from src.serve.state import ServeState

PREDICT_PATH = "/predict"
BATCH_PATH = "/predict/batch"
JSON_CONTENT_TYPE = (b"content-type", b"application/json")


@dataclass(frozen=True)
class LeanRoute:
    """What the lean path leaves in ``scope["route"]`` (metrics and logs read ``path``)."""

    path: str
    name: str


def presented_key_from_headers(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The API key as ``require_api_key`` sees it: ``Authorization: Bearer <key>`` (scheme
    case-insensitive, key stripped) if present and well-formed, else ``X-API-Key``; the first
    header of each name counts, values are latin-1 (Starlette's ``Headers``)."""
    authorization = api_key = None
    for name, value in headers:
        if name == b"authorization":
            if authorization is None:
                authorization = value
        elif name == b"x-api-key" and api_key is None:
            api_key = value
    if authorization:
        scheme, _, credentials = authorization.decode("latin-1").partition(" ")
        credentials = credentials.strip()
        if scheme and credentials and scheme.lower() == "bearer":
            return credentials
    return api_key.decode("latin-1") if api_key else None


def _content_type(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"content-type":
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes:
    """The whole body, as ``Request.body()`` reads it (the limit is enforced by ``receive``)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


class LeanPredict:
    """Plain-ASGI ``POST /predict`` and ``POST /predict/batch`` (see the module docstring)."""

    def __init__(self, state: ServeState) -> None:
        self.state = state
        self.routes = {
            PREDICT_PATH: LeanRoute(PREDICT_PATH, "predict"),
            BATCH_PATH: LeanRoute(BATCH_PATH, "predict_batch"),
        }
        self._handlers: dict[str, Callable[[Scope, Receive], Awaitable[bytes]]] = {
            PREDICT_PATH: self._predict,
            BATCH_PATH: self._predict_batch,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request (``scope["path"]`` is one of the two lean paths)."""
        path = scope["path"]
        scope["route"] = self.routes[path]
        try:
            body = await self._handlers[path](scope, receive)
        except ServeError as exc:
            request_id = (scope.get("state") or {}).get("request_id")
            await render_serve_error(exc, request_id)(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body)), JSON_CONTENT_TYPE],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _model(self, scope: Scope) -> LoadedModel:
        """Authenticate, then the serving model pinned for this request (or 503)."""
        headers = scope["headers"]
        state = self.state
        state.auth.check(presented_key_from_headers(headers))
        model = state.store.current
        if model is None:
            raise ModelNotReadyError(f"No model is loaded: {state.store.not_ready_reason}.")
        scope["state"]["model_version"] = model.version
        check_json_content_type(_content_type(headers))
        return model

    async def _predict(self, scope: Scope, receive: Receive) -> bytes:
        state = self.state
        inference = state.inference
        # Tell a micro-batcher that a row is on its way (it may wait for it, see batching.py).
        inference.row_arriving()
        try:
            model = self._model(scope)
            data = parse_json_body(await _read_body(receive))
            row, client_id = model.schemas.parse_record(data)
        finally:
            inference.row_arrived()
        (result,) = await inference.infer(model, [row])
        ensure_finite([result], batch=False)
        return orjson.dumps(
            {
                "request_id": client_id or scope["state"]["request_id"],
                "prediction": result.prediction,
                "probabilities": result.probabilities,
                "model_name": model.name,
                "model_version": model.version,
                "api_version": state.api_version,
            }
        )

    async def _predict_batch(self, scope: Scope, receive: Receive) -> bytes:
        state = self.state
        model = self._model(scope)
        data = parse_json_body(await _read_body(receive))
        rows, client_id = model.schemas.parse_batch(data, state.settings.max_batch_rows)
        results = await state.inference.infer(model, rows)
        ensure_finite(results, batch=True)
        return orjson.dumps(
            {
                "request_id": client_id or scope["state"]["request_id"],
                "predictions": [
                    {"prediction": r.prediction, "probabilities": r.probabilities} for r in results
                ],
                "model_name": model.name,
                "model_version": model.version,
                "api_version": state.api_version,
            }
        )


class ServeApp(FastAPI):
    """FastAPI, with ``POST /predict`` and ``POST /predict/batch`` handed to
    :attr:`lean_predict` (when set) inside the app's user middleware, before FastAPI's own
    layers (see the module docstring)."""

    lean_predict: LeanPredict | None = None
    _lean_stack: ASGIApp | None = None

    def _build_lean_stack(self) -> ASGIApp | None:
        telemetry: Any = getattr(self, "_native_telemetry", None)
        if self.lean_predict is None or (telemetry is not None and telemetry.enabled()):
            return None  # FastAPI's OpenTelemetry must see every request: no shortcut
        app: ASGIApp = self.lean_predict
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch the two lean routes; everything else is FastAPI's."""
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in (PREDICT_PATH, BATCH_PATH)
            and not scope.get("root_path")
            and not self.root_path
        ):
            stack = self._lean_stack
            if stack is None:
                stack = self._lean_stack = self._build_lean_stack() or super().__call__
            scope["app"] = self
            await stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
