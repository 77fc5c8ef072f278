"""The load-time timing that decides how many rows a backend call may predict inline."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from src.serve.backends import timing
from src.serve.backends.base import Backend, Prediction, Row
from src.serve.backends.timing import inline_row_limit

PROBE_ROW = (1.0, 2.0)


class FakeBackend(Backend):
    """Answers every row with 0 after ``delay`` seconds, or raises ``error``."""

    name = "fake"

    def __init__(self, delay: float = 0.0, error: Exception | None = None) -> None:
        self.delay = delay
        self.error = error

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        if self.error is not None:
            raise self.error
        if self.delay:
            time.sleep(self.delay)
        return [Prediction(0, None) for _ in rows]


def test_a_backend_that_cannot_be_timed_never_runs_inline() -> None:
    assert inline_row_limit(FakeBackend(error=RuntimeError("broken")), PROBE_ROW) == 0


def test_a_backend_slower_than_the_budget_never_runs_inline() -> None:
    # A sleep lasts at least its duration: 2 ms is always over the 50 us budget.
    assert inline_row_limit(FakeBackend(delay=0.002), PROBE_ROW) == 0


def test_a_fast_backend_runs_at_most_the_timed_batch_inline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No skip threshold and a budget no call can exceed: only the cap remains.
    monkeypatch.setattr(timing, "TIMING_SKIP_SECONDS", float("inf"))
    assert (
        inline_row_limit(FakeBackend(), PROBE_ROW, budget_seconds=3600.0)
        == timing.TIMING_BATCH_ROWS
    )
