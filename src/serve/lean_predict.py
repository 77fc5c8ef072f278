"""The plain-ASGI adapter of ``POST /predict`` and ``POST /predict/batch`` (the hot path).

FastAPI's per-request machinery (routing, dependency injection, ``Request``/``Response``
objects, its outer ASGI layers) costs more than an ONNX prediction, and these two endpoints
carry nearly all traffic: :class:`~src.serve.serve_app.ServeApp` hands them to
:class:`LeanPredict` inside the app's own middleware stack, before FastAPI's layers. The
adapter only names the route (metrics and logs read ``scope["route"].path``), calls the
:class:`~src.serve.dataplane.DataPlane` and sends its bytes; errors propagate as exceptions
to the request-context middleware, which renders them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from src.serve.dataplane import DataPlane

PREDICT_PATH = "/predict"
BATCH_PATH = "/predict/batch"
LEAN_PATHS = (PREDICT_PATH, BATCH_PATH)
MODELS_PREFIX = "/models/"
NAMED_PREDICT_PATH = "/models/{name}/predict"
NAMED_BATCH_PATH = "/models/{name}/predict/batch"
_NAMED_TAILS = {"predict": NAMED_PREDICT_PATH, "predict/batch": NAMED_BATCH_PATH}
JSON_CONTENT_TYPE = (b"content-type", b"application/json")


def lean_target(path: str) -> tuple[str, str | None] | None:
    """(route template, model name) for a path the lean adapter answers, else None:
    ``/predict``, ``/predict/batch`` (the default model) and ``/models/{name}/predict(/batch)``."""
    if path in LEAN_PATHS:
        return path, None
    if path.startswith(MODELS_PREFIX):
        name, sep, tail = path[len(MODELS_PREFIX) :].partition("/")
        template = _NAMED_TAILS.get(tail)
        if sep and name and template is not None:
            return template, name
    return None


@dataclass(frozen=True)
class LeanRoute:
    """What the lean path leaves in ``scope["route"]`` (metrics and logs read ``path``)."""

    path: str
    name: str


class LeanPredict:
    """Plain-ASGI ``POST /predict`` and ``POST /predict/batch``, for the default model and by
    model name (see the module docstring)."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane
        self.routes: dict[
            str, tuple[LeanRoute, Callable[[Scope, Receive, str | None], Awaitable[bytes]]]
        ] = {
            PREDICT_PATH: (LeanRoute(PREDICT_PATH, "predict"), dataplane.predict),
            BATCH_PATH: (LeanRoute(BATCH_PATH, "predict_batch"), dataplane.predict_batch),
            NAMED_PREDICT_PATH: (LeanRoute(NAMED_PREDICT_PATH, "predict"), dataplane.predict),
            NAMED_BATCH_PATH: (
                LeanRoute(NAMED_BATCH_PATH, "predict_batch"),
                dataplane.predict_batch,
            ),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request (``scope["path"]`` is one :func:`lean_target` accepts)."""
        template, model_name = lean_target(scope["path"]) or (scope["path"], None)
        route, handle = self.routes[template]
        scope["route"] = route
        body = await handle(scope, receive, model_name)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body)), JSON_CONTENT_TYPE],
            }
        )
        await send({"type": "http.response.body", "body": body})
