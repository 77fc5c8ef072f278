"""The plain-ASGI adapter of ``POST /v2/models/{name}[/versions/{version}]/infer``.

Like ``lean_predict.py`` for ``/predict``: :class:`~src.serve.serve_app.ServeApp` hands the
inference paths here, inside the app's own middleware stack, skipping FastAPI's routing and
dependency injection (which cost more than the protocol's decoding). The route's template
labels metrics and logs, as FastAPI's route of the same path (``routes/oip.py``, what
/openapi.json documents) would. Paths of any other shape go to FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from src.serve.errors import NotFoundError
from src.serve.lean_predict import LeanRoute
from src.serve.oip.codec import BINARY_MEDIA_TYPE, OipCodec

if TYPE_CHECKING:
    from src.serve.dataplane import DataPlane

INFER_ROUTE = LeanRoute("/v2/models/{model_name}/infer", "infer")
VERSION_INFER_ROUTE = LeanRoute("/v2/models/{model_name}/versions/{model_version}/infer", "infer")
JSON_HEADERS = [(b"content-type", b"application/json")]
BINARY_CONTENT_TYPE = (b"content-type", BINARY_MEDIA_TYPE.encode())


def infer_target(path: str) -> tuple[LeanRoute, str, str | None] | None:
    """``(route, model name, version or None)`` for an inference path, else None."""
    if not (path.startswith("/v2/models/") and path.endswith("/infer")):
        return None
    parts = path.split("/")  # "", "v2", "models", name, ["versions", version,] "infer"
    if len(parts) == 5 and parts[3]:
        return INFER_ROUTE, parts[3], None
    if len(parts) == 7 and parts[3] and parts[4] == "versions" and parts[5]:
        return VERSION_INFER_ROUTE, parts[3], parts[5]
    return None


class LeanInfer:
    """Plain-ASGI OIP inference (see the module docstring)."""

    def __init__(self, dataplane: DataPlane, max_batch_rows: int) -> None:
        self.dataplane = dataplane
        self.codec = OipCodec(max_batch_rows)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request whose path :func:`infer_target` accepts."""
        target = infer_target(scope["path"])
        if target is None:  # ServeApp dispatches only inference paths here
            raise NotFoundError("Not found: no such endpoint (see /docs).")
        route, model_name, model_version = target
        scope["route"] = route
        answer = await self.dataplane.infer(scope, receive, self.codec, model_name, model_version)
        length = (b"content-length", b"%d" % len(answer.body))
        if answer.json_length is None:
            headers = [length, *JSON_HEADERS]
        else:
            headers = [
                length,
                BINARY_CONTENT_TYPE,
                (b"inference-header-content-length", b"%d" % answer.json_length),
            ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
