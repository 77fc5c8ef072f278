"""The per-request time limit (pure ASGI): 504 when the answer has not started in time.

:class:`TimeLimitMiddleware` sits inside the request-context middleware (which renders its 504
with the request id, counts and logs it). A request that has not started its response within
``REQUEST_TIMEOUT_SECONDS`` is cancelled and answered 504 (body upload time included, so a
slow-drip client cannot hold a request open). A prediction stuck in a worker thread is
abandoned (the thread finishes on its own; Python cannot kill it). ``/admin/*`` is exempt: a
reload of a large model may legitimately take longer, and it continues in the background
anyway.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.serve.errors import RequestTimeoutError

ADMIN_PREFIX = "/admin/"


@dataclass(eq=False, slots=True)
class _Request:
    """One request under a deadline."""

    task: asyncio.Task[Any]
    deadline: float
    expired: bool = False


class _Deadlines:
    """The requests of one event loop waiting for their answer to start, oldest first, and
    the one timer armed for the oldest deadline."""

    def __init__(self) -> None:
        self.waiting: dict[_Request, None] = {}  # an insertion-ordered set
        self.timer: asyncio.TimerHandle | None = None

    def add(self, request: _Request) -> None:
        self.waiting[request] = None
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_at(request.deadline, self.expire)

    def expire(self) -> None:
        """Cancel every request whose deadline has passed; re-arm for the next one."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        waiting = self.waiting
        while waiting:
            oldest = next(iter(waiting))
            if oldest.deadline > now:
                self.timer = loop.call_at(oldest.deadline, self.expire)
                return
            del waiting[oldest]
            oldest.expired = True
            oldest.task.cancel()
        self.timer = None


class TimeLimitMiddleware:
    """Answers 504 when a request has not started its response within ``seconds``.

    Every request has the same limit, so deadlines fall in arrival order: the requests under a
    deadline are kept in an insertion-ordered dict per event loop, and one timer, armed for the
    oldest deadline, cancels the requests whose time is up. A request costs a dict insertion
    and removal instead of a timer of its own (docs/performance.md). Only that cancellation
    becomes the 504 (``Task.uncancel`` tells it apart from a shutdown's).
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self._deadlines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = (
            weakref.WeakKeyDictionary()
        )

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
        loop = task.get_loop()
        deadlines = self._deadlines.get(loop)
        if deadlines is None:
            deadlines = self._deadlines[loop] = _Deadlines()
        request = _Request(task, loop.time() + self.seconds)
        deadlines.add(request)
        waiting = deadlines.waiting

        async def send_in_time(message: Message) -> None:
            if message["type"] == "http.response.start":
                waiting.pop(request, None)  # the answer is on its way: let it finish
            await send(message)

        try:
            await self.app(scope, receive, send_in_time)
        except asyncio.CancelledError:
            if not request.expired or task.uncancel() > 0:
                raise  # not (only) ours: e.g. the server is shutting down
            logger.warning("request abandoned after {:g} s (REQUEST_TIMEOUT_SECONDS)", self.seconds)
            raise RequestTimeoutError(
                f"The request did not complete within {self.seconds:g} s "
                "(REQUEST_TIMEOUT_SECONDS) and was abandoned."
            ) from None
        else:
            if request.expired:  # the app swallowed our cancellation: leave the count clean
                task.uncancel()
        finally:
            waiting.pop(request, None)
