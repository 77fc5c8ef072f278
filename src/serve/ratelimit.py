"""Per-API-key rate limiting: one token bucket per key, identified by the key's SHA-256.

Off by default. ``RATE_LIMIT_PER_MINUTE`` (> 0) is the sustained rate each key may send;
``RATE_LIMIT_BURST`` (default: the per-minute figure) is the bucket size, i.e. how many
requests a key that has been quiet may send at once. A request that finds its bucket empty is
answered 429 with ``Retry-After`` (whole seconds until a token is back) and the usual JSON
error body.

The limiter runs right after a key is accepted (:class:`~src.serve.auth.Authenticator`), so:

* only configured keys ever get a bucket: the table is bounded by the number of keys and
  random keys cannot grow it (they are answered 403 before reaching it);
* buckets are keyed by the digest the authenticator already computed, never by the key;
* every authenticated route is covered, whatever path (router or fast path) authenticates.

Buckets live in each worker process: with ``WORKERS=N`` a key may get up to N times the rate
across the service. Put a gateway in front for an exact global limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from src.serve.errors import RateLimitedError

MAX_BUCKETS = 10_000  # far above any realistic number of configured keys; a safety bound


class RateLimiter:
    """Token buckets by key digest (thread-safe)."""

    def __init__(
        self,
        per_minute: float,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = per_minute
        self.rate = per_minute / 60.0  # tokens per second
        self.capacity = float(burst if burst is not None else max(1, math.ceil(per_minute)))
        self._clock = clock
        self._buckets: dict[bytes, tuple[float, float]] = {}  # digest -> (tokens, updated at)
        self._lock = threading.Lock()

    def wait_seconds(self, digest: bytes) -> float:
        """Take one token for ``digest``: 0.0 when allowed, else seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, updated = self._buckets.get(digest, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - updated) * self.rate)
            if tokens >= 1.0:
                self._store(digest, tokens - 1.0, now)
                return 0.0
            self._store(digest, tokens, now)
            return (1.0 - tokens) / self.rate

    def _store(self, digest: bytes, tokens: float, now: float) -> None:
        if digest not in self._buckets and len(self._buckets) >= MAX_BUCKETS:
            self._buckets.pop(next(iter(self._buckets)))  # oldest insertion
        self._buckets[digest] = (tokens, now)

    def check(self, digest: bytes) -> None:
        """Raise :class:`RateLimitedError` (429 + ``Retry-After``) when the bucket is empty."""
        wait = self.wait_seconds(digest)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise RateLimitedError(
                f"Rate limit exceeded: at most {self.per_minute:g} requests per minute per API "
                f"key (bursts of {self.capacity:g}). Retry after {retry_after} s.",
                headers={"Retry-After": str(retry_after)},
            )
