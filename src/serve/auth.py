"""API-key authentication: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Keys are compared in constant time: the presented key and every configured key are hashed
(SHA-256) and compared with ``hmac.compare_digest`` against *all* configured keys, without an
early exit, so neither the position of a match nor key lengths leak through timing. Missing key
-> 401 with ``WWW-Authenticate: Bearer``; wrong key -> 403. Keys are never logged. An accepted
key then takes a token from its rate-limit bucket (``ratelimit.py``; 429 when empty), keyed by
the digest computed here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from src.serve.errors import ForbiddenError, UnauthorizedError
from src.serve.metrics import Metrics
from src.serve.ratelimit import RateLimiter

# Declared as FastAPI security schemes so /docs has an "Authorize" button and /openapi.json
# documents both ways of passing a key; auto_error=False so our errors (and shape) apply.
bearer_scheme = HTTPBearer(auto_error=False, description="API key as a bearer token.")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key.")


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


def presented_key(
    bearer: HTTPAuthorizationCredentials | None, header_key: str | None
) -> str | None:
    """The key from ``Authorization: Bearer`` if given, else from ``X-API-Key``."""
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return header_key or None


def _authenticator(request: Request) -> Authenticator:
    return request.app.state.serve.auth


async def require_api_key(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),  # noqa: B008
    header_key: str | None = Depends(api_key_scheme),
) -> None:
    """FastAPI dependency: an API key (or admin key) is required."""
    _authenticator(request).check(presented_key(bearer, header_key))


async def require_admin_key(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),  # noqa: B008
    header_key: str | None = Depends(api_key_scheme),
) -> None:
    """FastAPI dependency: an admin key is required."""
    _authenticator(request).check(presented_key(bearer, header_key), admin=True)
