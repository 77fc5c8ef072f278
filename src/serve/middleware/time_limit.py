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

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.serve.errors import RequestTimeoutError

ADMIN_PREFIX = "/admin/"


class TimeLimitMiddleware:
    """Answers 504 when a request has not started its response within ``seconds``.

    One event-loop timer per request cancels the request's task at the deadline unless the
    response has started; only that cancellation becomes the 504 (``Task.uncancel`` tells it
    apart from a shutdown's). A plain timer is much cheaper than a cancel scope on this hot
    path (docs/performance.md).
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

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
        started = expired = False

        def expire() -> None:
            nonlocal expired
            if not started:
                expired = True
                task.cancel()

        timer = asyncio.get_running_loop().call_later(self.seconds, expire)

        async def send_in_time(message: Message) -> None:
            nonlocal started
            if not started and message["type"] == "http.response.start":
                started = True  # the answer is on its way: let it finish
                timer.cancel()
            await send(message)

        try:
            await self.app(scope, receive, send_in_time)
        except asyncio.CancelledError:
            if not expired or task.uncancel() > 0:
                raise  # not (only) ours: e.g. the server is shutting down
            logger.warning("request abandoned after {:g} s (REQUEST_TIMEOUT_SECONDS)", self.seconds)
            raise RequestTimeoutError(
                f"The request did not complete within {self.seconds:g} s "
                "(REQUEST_TIMEOUT_SECONDS) and was abandoned."
            ) from None
        else:
            if expired:  # the app swallowed our cancellation: leave the task's count clean
                task.uncancel()
        finally:
            timer.cancel()
