"""Guards: security headers on every response, a per-request time limit (pure ASGI), and the
check that a model's answer is finite before it is sent.

:class:`SecurityHeadersMiddleware` is the outermost layer, so every response (errors, 404s,
the middleware's own 413/500s, the fast path, /docs) carries:

* ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store`` (unless the route set one);
* ``Content-Security-Policy``: ``default-src 'none'`` for everything the API answers (JSON,
  Prometheus text), which a browser can render nothing from; HTML pages (``/docs``,
  ``/redoc``) get a policy that admits their CDN assets and exactly their own inline scripts
  (by SHA-256 hash, computed from the page as served), never arbitrary inline script.

:class:`TimeoutMiddleware` sits inside the serving middleware (which renders its 504 with the
request id, counts and logs it). A request that has not started its response within
``REQUEST_TIMEOUT_SECONDS`` is cancelled and answered 504 (body upload time included, so a
slow-drip client cannot hold a request open). A prediction stuck in a worker thread is
abandoned (the thread finishes on its own; Python cannot kill it). ``/admin/*`` is exempt: a
reload of a large model may legitimately take longer, and it continues in the background
anyway.

:func:`ensure_finite` runs on every prediction before it is answered: a model that returns NaN
or infinity for a (valid, bounded) input is answered 422 ``unscorable_input`` naming the
records, never a 200 with ``null`` probabilities or a 500.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.serve.errors import MAX_ERROR_DETAILS, RequestTimeoutError, UnscorableInputError

if TYPE_CHECKING:
    from src.serve.backends.base import Prediction

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# /docs (Swagger UI) and /redoc load their bundles from jsDelivr (FastAPI's defaults); ReDoc's
# fonts come from Google Fonts and it runs a web worker from a blob: URL. Inline styles are
# allowed on these two pages (the UIs inject them); inline *scripts* only by hash.
DOCS_CSP = (
    "default-src 'none'; "
    "script-src https://cdn.jsdelivr.net{script_hashes}; "
    "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
    "img-src 'self' data: https://cdn.jsdelivr.net https://fastapi.tiangolo.com; "
    "font-src https://fonts.gstatic.com; "
    "connect-src 'self'; "
    "worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
NO_STORE = (b"cache-control", b"no-store")
INLINE_SCRIPT = re.compile(rb"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script\s*>", re.S | re.I)
MAX_HTML_BYTES = 1 << 20  # larger HTML is not buffered for hashing (none of ours comes close)
ADMIN_PREFIX = "/admin/"


def inline_script_hashes(html: bytes) -> list[str]:
    """CSP source expressions (``'sha256-...'``) for each inline ``<script>`` in ``html``."""
    hashes = []
    for match in INLINE_SCRIPT.finditer(html):
        if re.search(rb"\bsrc\s*=", match.group("attrs"), re.I):
            continue
        digest = base64.b64encode(hashlib.sha256(match.group("body")).digest()).decode("ascii")
        hashes.append(f"'sha256-{digest}'")
    return hashes


def docs_csp(html: bytes) -> str:
    """The Content-Security-Policy of one HTML page."""
    return DOCS_CSP.format(script_hashes="".join(f" {h}" for h in inline_script_hashes(html)))


def _has(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(key.lower() == name for key, _ in headers)


def _is_html(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(
        key.lower() == b"content-type" and value.lower().startswith(b"text/html")
        for key, value in headers
    )


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def _with_headers(self, message: Message, csp: str) -> Message:
        headers = list(message.get("headers", ()))
        headers.extend(h for h in STATIC_HEADERS if not _has(headers, h[0]))
        if not _has(headers, b"cache-control"):
            headers.append(NO_STORE)
        if not _has(headers, b"content-security-policy"):
            headers.append((b"content-security-policy", csp.encode("ascii")))
        return {**message, "headers": headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request (non-HTTP scopes pass straight through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held_start: Message | None = None
        held_body: list[bytes] = []

        async def send_secured(message: Message) -> None:
            nonlocal held_start
            if message["type"] == "http.response.start":
                if _is_html(message.get("headers", ())):
                    held_start = message  # hash the page's inline scripts before sending
                    return
                await send(self._with_headers(message, API_CSP))
                return
            if held_start is not None and message["type"] == "http.response.body":
                held_body.append(message.get("body", b""))
                size = sum(map(len, held_body))
                if message.get("more_body", False) and size <= MAX_HTML_BYTES:
                    return
                body = b"".join(held_body)
                csp = docs_csp(body) if size <= MAX_HTML_BYTES else API_CSP
                await send(self._with_headers(held_start, csp))
                held_start = None
                held_body.clear()
                await send({**message, "body": body})
                return
            await send(message)

        await self.app(scope, receive, send_secured)


class TimeoutMiddleware:
    """Answers 504 when a request has not started its response within ``seconds``.

    One event-loop timer per request cancels the request's task at the deadline unless the
    response has started; only that cancellation becomes the 504 (``Task.uncancel`` tells it
    apart from a shutdown's). A plain timer costs a fraction of a cancel scope on this hot
    path (~20 us less CPU per request, measured; docs/performance.md).
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request under a deadline (off when ``seconds`` is 0; /admin/* exempt)."""
        if (
            scope["type"] != "http"
            or self.seconds <= 0
            or scope.get("path", "").startswith(ADMIN_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - ASGI servers always run requests in tasks
            await self.app(scope, receive, send)
            return
        started = expired = False

        def expire() -> None:
            nonlocal expired
            if not started:
                expired = True
                task.cancel()

        timer = asyncio.get_running_loop().call_later(self.seconds, expire)

        async def send_in_time(message: Message) -> None:
            nonlocal started
            if not started and message["type"] == "http.response.start":
                started = True  # the answer is on its way: let it finish
                timer.cancel()
            await send(message)

        try:
            await self.app(scope, receive, send_in_time)
        except asyncio.CancelledError:
            if not expired or task.uncancel() > 0:
                raise  # not (only) ours: e.g. the server is shutting down
            logger.warning("request abandoned after {:g} s (REQUEST_TIMEOUT_SECONDS)", self.seconds)
            raise RequestTimeoutError(
                f"The request did not complete within {self.seconds:g} s "
                "(REQUEST_TIMEOUT_SECONDS) and was abandoned."
            ) from None
        else:
            if expired:  # the app swallowed our cancellation: leave the task's count clean
                task.uncancel()
        finally:
            timer.cancel()


def _is_finite(prediction: Prediction) -> bool:
    value = prediction.prediction
    if isinstance(value, float) and not math.isfinite(value):
        return False
    probabilities = prediction.probabilities
    return probabilities is None or all(map(math.isfinite, probabilities.values()))


def ensure_finite(predictions: Sequence[Prediction], *, batch: bool) -> None:
    """Raise :class:`UnscorableInputError` (422) when any prediction is NaN or infinite."""
    if all(map(_is_finite, predictions)):  # the common case, in C-level loops (hot path)
        return
    bad = [i for i, prediction in enumerate(predictions) if not _is_finite(prediction)]
    if bad:
        details = [
            {
                "field": f"records[{i}]" if batch else "body",
                "message": "The model's output for this record is not finite",
            }
            for i in bad[:MAX_ERROR_DETAILS]
        ]
        raise UnscorableInputError(details=details)
