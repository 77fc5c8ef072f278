"""Load-time timing that decides which backend calls run on the event loop itself."""

from __future__ import annotations

import time
from collections.abc import Sequence

from src.serve.backends.base import Backend, Row

#: A backend call predicted to take at most this long runs on the event loop itself: handing
#: it to the thread pool costs ~40-50 us of CPU per call (measured, docs/performance.md), more
#: than the call, and on a one-core worker the thread competes for the same core anyway.
INLINE_BUDGET_SECONDS = 50e-6
#: Backends whose one-row call takes longer than this are not timed further at load.
TIMING_SKIP_SECONDS = 5e-3
TIMING_BATCH_ROWS = 64


def inline_row_limit(
    backend: Backend, probe_row: Row, budget_seconds: float = INLINE_BUDGET_SECONDS
) -> int:
    """How many rows one call may predict inline (0: always use the thread pool).

    Times the backend on ``probe_row`` (best of a few calls, 1 row and 64 rows) and returns
    the largest row count whose predicted time fits ``budget_seconds``. A noisy machine only
    makes the limit smaller (slower measured calls), never unsafe.
    """

    def best_of(rows: Sequence[Row], repeat: int) -> float:
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            backend.predict(rows)
            best = min(best, time.perf_counter() - started)
        return best

    try:
        one = best_of([probe_row], 1)
        if one > TIMING_SKIP_SECONDS:
            return 0
        one = min(one, best_of([probe_row], 5))
        if one > budget_seconds:
            return 0
        many = best_of([probe_row] * TIMING_BATCH_ROWS, 3)
    except Exception:  # a backend that cannot be timed simply never runs inline
        return 0
    per_row = max((many - one) / (TIMING_BATCH_ROWS - 1), 1e-9)
    return max(1, min(TIMING_BATCH_ROWS, 1 + int((budget_seconds - one) / per_row)))
