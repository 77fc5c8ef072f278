"""Security headers on every HTTP response (pure ASGI, the outermost middleware).

Every response (errors, 404s, the request-context middleware's own 413/500s, the lean
/predict path, /docs) carries:

* ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store`` (unless the route set one);
* ``Content-Security-Policy``: ``default-src 'none'`` for everything the API answers (JSON,
  Prometheus text), which a browser can render nothing from; HTML pages (``/docs``,
  ``/redoc``) get a policy that admits their own assets ('self') and exactly their inline scripts
  (by SHA-256 hash, computed from the page as served), never arbitrary inline script.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# /docs (Swagger UI) and /redoc load their bundles from this service (docs_pages.py: the
# fastapi-offline package's assets), never from a CDN; ReDoc runs a web worker from a blob:
# URL. Inline styles are allowed on these two pages (the UIs inject them); inline *scripts*
# only by hash.
DOCS_CSP = (
    "default-src 'none'; "
    "script-src 'self'{script_hashes}; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "font-src 'self'; "
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
API_CSP_BYTES = API_CSP.encode("ascii")
#: The header names this middleware adds unless the response already has them.
ADDED_NAMES = frozenset(
    {*(name for name, _ in STATIC_HEADERS), b"cache-control", b"content-security-policy"}
)
INLINE_SCRIPT = re.compile(rb"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script\s*>", re.S | re.I)
MAX_HTML_BYTES = 1 << 20  # larger HTML is not buffered for hashing (none of ours comes close)


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


def _is_html(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key.lower() == b"content-type":
            return value.lower().startswith(b"text/html")
    return False


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def _with_headers(self, message: Message, csp: bytes) -> Message:
        headers = list(message.get("headers", ()))
        present = {key.lower() for key, _ in headers} & ADDED_NAMES  # one pass (hot path)
        if present:
            headers.extend(h for h in STATIC_HEADERS if h[0] not in present)
            if b"cache-control" not in present:
                headers.append(NO_STORE)
            if b"content-security-policy" not in present:
                headers.append((b"content-security-policy", csp))
        else:
            headers.extend(STATIC_HEADERS)
            headers.append(NO_STORE)
            headers.append((b"content-security-policy", csp))
        message = message.copy()
        message["headers"] = headers
        return message

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
                await send(self._with_headers(message, API_CSP_BYTES))
                return
            if held_start is not None and message["type"] == "http.response.body":
                held_body.append(message.get("body", b""))
                size = sum(map(len, held_body))
                if message.get("more_body", False) and size <= MAX_HTML_BYTES:
                    return
                body = b"".join(held_body)
                csp = docs_csp(body) if size <= MAX_HTML_BYTES else API_CSP
                await send(self._with_headers(held_start, csp.encode("ascii")))
                held_start = None
                held_body.clear()
                await send({**message, "body": body})
                return
            await send(message)

        await self.app(scope, receive, send_secured)
