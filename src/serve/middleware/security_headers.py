"""The security headers of every HTTP response, added by the request-context middleware.

Every response (errors, 404s, the request context's own 413/500s, the lean /predict path,
/docs) carries:

* ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store`` (unless the route set one);
* ``Content-Security-Policy``: ``default-src 'none'`` for everything the API answers (JSON,
  Prometheus text), which a browser can render nothing from; HTML pages (``/docs``,
  ``/redoc``) get a policy that admits their own assets ('self') and exactly their inline scripts
  (by SHA-256 hash, computed from the page as served), never arbitrary inline script.

:func:`with_security_headers` secures a response's headers when it starts; an HTML page's start
is held by a :class:`HeldPage` until its body is complete, so its scripts can be hashed. They
are applied in the request-context middleware's one send wrapper rather than by a middleware
layer of their own: a layer costs every request a coroutine and a send wrapper more
(docs/performance.md).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from starlette.types import Message

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
#: The header names added unless the response already has them.
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


def is_html(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """True when the response's Content-Type is ``text/html`` (its start must be held)."""
    for key, value in headers:
        if key.lower() == b"content-type":
            return value.lower().startswith(b"text/html")
    return False


def with_security_headers(
    headers: list[tuple[bytes, bytes]], csp: bytes = API_CSP_BYTES
) -> list[tuple[bytes, bytes]]:
    """``headers`` (a list the caller owns, extended in place) plus each security header the
    response does not set itself; ``csp`` is the Content-Security-Policy."""
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
    return headers


class HeldPage:
    """An HTML response held until its body is complete, then sent with a policy that admits
    exactly its inline scripts (pages over :data:`MAX_HTML_BYTES` are sent as they come, with
    the API policy)."""

    def __init__(self, start: Message) -> None:
        self._start = start
        self._body: list[bytes] = []
        self._size = 0
        self.open = True  # False once the start has been sent

    def add(self, message: Message) -> list[Message]:
        """The messages to send now, given the response's next ``message``."""
        if not self.open or message["type"] != "http.response.body":
            return [message]
        chunk = message.get("body", b"")
        self._body.append(chunk)
        self._size += len(chunk)
        more = message.get("more_body", False)
        if more and self._size <= MAX_HTML_BYTES:
            return []
        body = b"".join(self._body)
        csp = docs_csp(body) if self._size <= MAX_HTML_BYTES else API_CSP
        headers = with_security_headers(list(self._start.get("headers", ())), csp.encode("ascii"))
        self.open = False
        self._body.clear()
        return [{**self._start, "headers": headers}, {**message, "body": body}]
