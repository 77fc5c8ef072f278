"""The request context (pure ASGI): request id, body limit, version and security headers,
the time limit, access log line (``access_log.py``), request metrics, and the rendering of
errors that reach it.

It wraps the whole app, so every response - errors, 404s and unexpected exceptions included -
carries ``X-Request-ID``, ``X-Model-Version``, ``X-API-Version`` and the security headers
(``security_headers.py``), is counted, and is logged once. A
:class:`~src.serve.errors.ServeError` raised below it (the lean /predict path, a body over the
limit) and the time limit's 504 (``time_limit.py``) are rendered here; unexpected exceptions
become a generic 500 (traceback in the server log only). The headers and the time limit are
steps of this one layer, not layers of their own: each layer costs every request a coroutine
and a send wrapper (docs/performance.md).

The request's id lives in ``scope["state"]["request_id"]``: the client's ``X-Request-ID`` when
valid, else a fresh one. The data plane replaces it with a ``request_id`` sent in the body
(same validation) once the body is parsed; the response headers, error bodies and the access
log line read it from there, so all of them name the id the client chose.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.serve.access_log import ACCESS_LOG
from src.serve.api_models import REQUEST_ID_BYTES_RE
from src.serve.errors import PayloadTooLargeError, ServeError, error_response, render_serve_error
from src.serve.logging_setup import REQUEST_ID
from src.serve.metrics import UNMATCHED_ROUTE
from src.serve.middleware.security_headers import HeldPage, is_html, with_security_headers
from src.serve.middleware.time_limit import TimeLimit

if TYPE_CHECKING:
    from src.serve.state import ServeState

NO_MODEL_VERSION = b"none"
IDS_PER_BLOCK = 256


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` when it is short and safe, else a fresh uuid4 hex."""
    for name, value in headers:
        if name == b"x-request-id":
            if REQUEST_ID_BYTES_RE.fullmatch(value):
                return value.decode("ascii")
            break
    return new_request_id()


#: Bytes 6 and 8 of a random UUID carry its version (4) and its RFC 4122 variant.
_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_RFC_4122_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))


def random_uuid_hexes(count: int) -> list[str]:
    """``count`` random UUIDs version 4, as 32 hex digits each (``uuid.uuid4().hex``), made
    from one ``os.urandom`` call with C-level passes (no ``UUID`` object, no loop per id)."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_RFC_4122_VARIANT)
    text = raw.hex()
    return [text[i : i + 32] for i in range(0, 32 * count, 32)]


class _RequestIds:
    """Fresh request ids made :data:`IDS_PER_BLOCK` at a time: one system call and one pass per
    block instead of per request. Handing one out is one step of a list iterator, which the
    GIL makes atomic, so threads never get the same id. A forked child drops its parent's."""

    def __init__(self, per_block: int = IDS_PER_BLOCK) -> None:
        self._per_block = per_block
        self._lock = threading.Lock()  # one refill at a time
        self._ids: Iterator[str] = iter(())
        os.register_at_fork(after_in_child=self._drop)

    def take(self) -> str:
        """A request id never handed out before."""
        try:
            return next(self._ids)
        except StopIteration:
            with self._lock:
                for fresh in self._ids:  # another thread refilled meanwhile
                    return fresh
                self._ids = iter(random_uuid_hexes(self._per_block))
                return next(self._ids)

    def _drop(self) -> None:
        self._lock = threading.Lock()
        self._ids = iter(())


_REQUEST_IDS = _RequestIds()


def new_request_id() -> str:
    """A random UUID version 4, as 32 hex digits: ``uuid.uuid4().hex`` without building a
    ``UUID`` object or a system call per id (this runs for every request)."""
    return _REQUEST_IDS.take()


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length header as an int, if present and numeric."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def route_template(scope: Scope, endpoint_paths: Mapping[Any, str] | None = None) -> str:
    """The path template of the route the router matched, or ``<unmatched>`` (404s): metric
    and log labels never contain raw, client-chosen paths.

    API routes leave ``scope["route"]``; plain routes (``/openapi.json``, ``/docs``) only
    their ``endpoint``, looked up in ``endpoint_paths``.
    """
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    if endpoint_paths:
        try:
            return endpoint_paths.get(scope.get("endpoint"), UNMATCHED_ROUTE)
        except TypeError:  # an unhashable endpoint
            return UNMATCHED_ROUTE
    return UNMATCHED_ROUTE


def too_large(limit: int) -> PayloadTooLargeError:
    """The 413 error for a body over ``limit`` bytes."""
    return PayloadTooLargeError(f"Request body exceeds the {limit}-byte limit (MAX_BODY_BYTES).")


class RequestContextMiddleware:
    """See the module docstring."""

    def __init__(
        self, app: ASGIApp, state: ServeState, endpoint_paths: Mapping[Any, str] | None = None
    ) -> None:
        self.app = app
        self.state = state
        self.endpoint_paths = dict(endpoint_paths or {})
        self.api_version = state.api_version.encode("ascii")
        self.limit = state.settings.max_body_bytes
        self.time_limit = TimeLimit(state.settings.request_timeout_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request (other scope types pass straight through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        scope_state: dict[str, Any] = scope.setdefault("state", {})
        scope_state["request_id"] = request_id
        limit = self.limit
        status = 500
        response_started = False
        received = 0
        declared = declared_length(scope["headers"])
        version: bytes | None = None  # X-Model-Version, once the response has started

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started, held, version
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                if deadline is not None:
                    deadline.answered()
                version = self._version(scope_state)
                headers = [*message.get("headers", ()), *self._headers(scope_state, version)]
                if is_html(headers):  # hashed once its body is complete
                    held = HeldPage({**message, "headers": headers})
                    return
                message = {**message, "headers": with_security_headers(headers)}
            elif held is not None:
                for out in held.add(message):
                    await send(out)
                return
            await send(message)

        async def receive_limited() -> Message:
            # Runs when the endpoint first asks for the body, i.e. after routing and auth: a
            # declared Content-Length over the limit is refused before any body byte is read,
            # a chunked body as soon as the running total passes the limit.
            nonlocal received
            if received == 0 and declared is not None and declared > limit:
                raise too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        metrics = self.state.metrics
        metrics.in_progress.inc()
        token = REQUEST_ID.set(request_id)
        held: HeldPage | None = None
        deadline = self.time_limit.start(scope)
        try:
            try:
                await self.app(scope, receive_limited, send_with_headers)
            except asyncio.CancelledError:
                timeout = deadline.timeout_error() if deadline is not None else None
                if timeout is None:
                    raise  # not (only) the time limit's: e.g. the server is shutting down
                raise timeout from None
            else:
                if deadline is not None:
                    deadline.completed()
            finally:
                if deadline is not None:
                    deadline.answered()  # an error is rendered below, never cut short
        except ServeError as exc:
            if response_started:
                raise
            await render_serve_error(exc, scope_state["request_id"], scope["path"])(
                scope, receive, send_with_headers
            )
        except Exception as exc:
            logger.opt(exception=exc).error(
                "unhandled error in {} {}",
                scope["method"],
                route_template(scope, self.endpoint_paths),
                request_id=scope_state["request_id"],
            )
            if response_started:
                raise
            response = error_response(
                500,
                "internal_error",
                "Internal server error.",
                scope_state["request_id"],
                path=scope["path"],
            )
            await response(scope, receive, send_with_headers)
        finally:
            REQUEST_ID.reset(token)
            metrics.in_progress.dec()
            elapsed = time.perf_counter() - started_at
            route = route_template(scope, self.endpoint_paths)
            metrics.observe_request(route, scope["method"], status, elapsed)
            if ACCESS_LOG.enabled:
                ACCESS_LOG.write(
                    scope_state["request_id"],  # the client's body id, if adopted
                    scope["method"],
                    route,
                    status,
                    elapsed,
                    version if version is not None else self._version(scope_state),
                )

    def _version(self, scope_state: dict[str, Any]) -> bytes:
        version = scope_state.get("model_version")
        if version is None:
            model = self.state.store.current
            version = model.version if model is not None else None
        return version.encode("ascii", "replace") if version else NO_MODEL_VERSION

    def _headers(self, scope_state: dict[str, Any], version: bytes) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-request-id", scope_state["request_id"].encode("ascii")),
            (b"x-model-version", version),
            (b"x-api-version", self.api_version),
        ]
