"""The per-request time limit: 504 when the answer has not started in time.

The request-context middleware starts a :class:`Deadline` for each request (its 504 is then
rendered with the request id, counted and logged like any error). A request that has not
started its response within ``REQUEST_TIMEOUT_SECONDS`` is cancelled and answered 504 (body
upload time included, so a slow-drip client cannot hold a request open). A prediction stuck in
a worker thread is abandoned (the thread finishes on its own; Python cannot kill it).
``/admin/*`` is exempt: a reload of a large model may legitimately take longer, and it
continues in the background anyway.

Every request has the same limit, so deadlines fall in arrival order: the requests under a
deadline are kept in an insertion-ordered dict per event loop, and one timer, armed for the
oldest deadline, cancels the requests whose time is up. A request costs a dict insertion and
removal instead of a timer of its own, and no middleware layer of its own (docs/performance.md).
Only that cancellation becomes the 504 (``Task.uncancel`` tells it apart from a shutdown's).

The deadline needs the request's task. ``asyncio.current_task()`` finds it through the running
loop, and on Python 3.11 finding the running loop makes a ``getpid`` system call (every call:
it guards against a loop inherited through ``fork``), which cost about 4 us per request in
context (docs/performance.md). So the app's lifespan yields :func:`lifespan_state`, the
server copies it into every request's ``scope["state"]``, and the task is looked up on that
loop by ``asyncio.current_task(loop)``, with no system call; without that state (an app
served without its lifespan) or when that loop is not running this request, the running loop
is asked.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from loguru import logger
from starlette.types import Scope

from src.serve.errors import RequestTimeoutError

ADMIN_PREFIX = "/admin/"
#: The lifespan state's key for the event loop that runs the requests.
EVENT_LOOP_KEY = "event_loop"


def lifespan_state() -> dict[str, Any]:
    """The lifespan state that lets :meth:`TimeLimit.start` find a request's task without a
    system call (the module docstring): the running event loop. Call it in the lifespan."""
    return {EVENT_LOOP_KEY: asyncio.get_running_loop()}


class Deadline:
    """One request under the time limit (see the module docstring)."""

    __slots__ = ("_waiting", "deadline", "expired", "seconds", "task")

    def __init__(
        self, task: asyncio.Task[Any], deadline: float, seconds: float, waiting: _Waiting
    ) -> None:
        self.task = task
        self.deadline = deadline
        self.seconds = seconds
        self.expired = False
        self._waiting = waiting

    def answered(self) -> None:
        """The answer has started, or the request is over: never cancel it now."""
        self._waiting.requests.pop(self, None)

    def timeout_error(self) -> RequestTimeoutError | None:
        """Called on ``CancelledError``: the 504 to answer when the cancellation was this
        deadline's alone, else None (e.g. the server is shutting down: re-raise)."""
        if not self.expired or self.task.uncancel() > 0:
            return None
        logger.warning("request abandoned after {:g} s (REQUEST_TIMEOUT_SECONDS)", self.seconds)
        return RequestTimeoutError(
            f"The request did not complete within {self.seconds:g} s "
            "(REQUEST_TIMEOUT_SECONDS) and was abandoned."
        )

    def completed(self) -> None:
        """The app returned: if it swallowed this deadline's cancellation, take the
        cancellation back, so the task's count stays clean."""
        if self.expired:
            self.task.uncancel()


class _Waiting:
    """The requests of one event loop waiting for their answer to start, oldest first, and
    the one timer armed for the oldest deadline."""

    def __init__(self) -> None:
        self.requests: dict[Deadline, None] = {}  # an insertion-ordered set
        self.timer: asyncio.TimerHandle | None = None

    def add(self, request: Deadline, loop: asyncio.AbstractEventLoop) -> None:
        self.requests[request] = None
        if self.timer is None:
            self.timer = loop.call_at(request.deadline, self.expire)

    def expire(self) -> None:
        """Cancel every request whose deadline has passed; re-arm for the next one."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        requests = self.requests
        while requests:
            oldest = next(iter(requests))
            if oldest.deadline > now:
                self.timer = loop.call_at(oldest.deadline, self.expire)
                return
            del requests[oldest]
            oldest.expired = True
            oldest.task.cancel()
        self.timer = None


class TimeLimit:
    """Starts a :class:`Deadline` of ``seconds`` for each request (none when ``seconds`` is 0,
    and for ``/admin/*``)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._waiting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waiting] = (
            weakref.WeakKeyDictionary()
        )
        # The last loop's state: a request nearly always runs on the same loop as the one
        # before, and a dictionary lookup by weak key builds a weak reference each time.
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], _Waiting] | None = None

    def start(self, scope: Scope) -> Deadline | None:
        """The running request's deadline (call it from the request's own task)."""
        if self.seconds <= 0 or scope["path"].startswith(ADMIN_PREFIX):
            return None
        served_by = scope.get("state", {}).get(EVENT_LOOP_KEY)
        task = asyncio.current_task(served_by) if served_by is not None else None
        if task is None:  # no lifespan state, or its loop is not the one running here
            task = asyncio.current_task()
            if task is None:  # pragma: no cover - ASGI servers always run requests in tasks
                return None
        loop = task.get_loop()
        last = self._last
        if last is not None and last[0]() is loop:
            waiting = last[1]
        else:
            waiting = self._waiting.get(loop)
            if waiting is None:
                waiting = self._waiting[loop] = _Waiting()
            self._last = (weakref.ref(loop), waiting)
        request = Deadline(task, loop.time() + self.seconds, self.seconds, waiting)
        waiting.add(request, loop)
        return request
