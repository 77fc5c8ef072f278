"""API-key authentication: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Keys are compared in constant time: the presented key and every configured key are hashed
(SHA-256) and compared with ``hmac.compare_digest`` against *all* configured keys, without an
early exit, so neither the position of a match nor key lengths leak through timing. Missing key
-> 401 with ``WWW-Authenticate: Bearer``; wrong key -> 403. Keys are never logged. An accepted
key then takes a token from its rate-limit bucket (``ratelimit.py``; 429 when empty), keyed by
the digest computed here.

The presented key is read from the raw ASGI headers by :func:`presented_key_from_headers`,
exactly as FastAPI's ``HTTPBearer`` and ``APIKeyHeader`` read it; every authenticated request
(the data plane's and the other routes' dependencies) goes through it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from fastapi import Request
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import SecretStr

from src.serve.errors import ForbiddenError, UnauthorizedError
from src.serve.metrics import Metrics
from src.serve.ratelimit import RateLimiter


def presented_key_from_headers(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The API key a request presents: ``Authorization: Bearer <key>`` (scheme
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


class DocumentedBearer(HTTPBearer):
    """``HTTPBearer`` for /openapi.json only (the "Authorize" button): reads nothing, the key
    is read once by :func:`presented_key_from_headers`."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        """Nothing to do at request time."""


class DocumentedApiKeyHeader(APIKeyHeader):
    """``APIKeyHeader`` for /openapi.json only (see :class:`DocumentedBearer`)."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        """Nothing to do at request time."""


bearer_scheme = DocumentedBearer(
    scheme_name="HTTPBearer", auto_error=False, description="API key as a bearer token."
)
api_key_scheme = DocumentedApiKeyHeader(
    name="X-API-Key", scheme_name="APIKeyHeader", auto_error=False, description="API key."
)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class Authenticator:
    """Checks presented keys against the configured API and admin keys."""

    def __init__(
        self,
        api_keys: Iterable[SecretStr],
        admin_keys: Iterable[SecretStr],
        *,
        disabled: bool,
        metrics: Metrics,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.disabled = disabled
        self.metrics = metrics
        self.limiter = limiter
        self._admin = tuple(_digest(k.get_secret_value()) for k in admin_keys)
        # Admin keys also work wherever an ordinary API key does.
        self._api = tuple(_digest(k.get_secret_value()) for k in api_keys) + self._admin

    @staticmethod
    def _matches(candidate: bytes, keys: tuple[bytes, ...]) -> bool:
        found = False
        for key in keys:  # no early exit: time does not depend on which key matched
            found |= hmac.compare_digest(candidate, key)
        return found

    def check(self, presented: str | None, *, admin: bool = False) -> None:
        """Raise :class:`UnauthorizedError` (no key) or :class:`ForbiddenError` (wrong key)."""
        if self.disabled:
            return
        if not presented:
            self.metrics.auth_failed("missing")
            raise UnauthorizedError()
        digest = _digest(presented)
        if not self._matches(digest, self._admin if admin else self._api):
            self.metrics.auth_failed("invalid")
            raise ForbiddenError("Invalid API key for this endpoint." if admin else None)
        if self.limiter is not None:
            self.limiter.check(digest)  # only accepted keys ever get a bucket

    def check_headers(self, headers: list[tuple[bytes, bytes]], *, admin: bool = False) -> None:
        """:meth:`check` the key the raw ASGI ``headers`` present."""
        self.check(presented_key_from_headers(headers), admin=admin)
