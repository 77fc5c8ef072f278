"""The one polling helper of the test tree: wait until a condition holds, or fail saying which."""

from __future__ import annotations

import time
from collections.abc import Callable


class ConditionTimeoutError(AssertionError):
    """A polled condition did not hold within its timeout."""


def wait_for(
    predicate: Callable[[], object],
    timeout: float = 30.0,
    what: str = "condition",
    *,
    step: float = 0.1,
    detail: Callable[[], str] | None = None,
) -> None:
    """Call ``predicate`` every ``step`` seconds until it returns something true.

    Raises ``ConditionTimeoutError`` naming ``what`` after ``timeout`` seconds, followed by
    ``detail()`` when given (e.g. a server's log tail). Exceptions from ``predicate`` propagate.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            message = f"{what} not met within {timeout} s"
            if detail is not None:
                message += "\n" + detail()
            raise ConditionTimeoutError(message)
        time.sleep(step)
