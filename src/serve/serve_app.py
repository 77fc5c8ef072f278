"""``ServeApp``: FastAPI, with the two prediction paths dispatched to the lean adapter.

``POST /predict`` and ``POST /predict/batch`` (and their ``/models/{name}/...`` forms) go to
:attr:`ServeApp.lean_predict` (``lean_predict.py``), and the Open Inference Protocol's
``POST /v2/models/{name}[/versions/{version}]/infer`` to :attr:`ServeApp.lean_infer`
(``oip/lean.py``; looked at only for requests that are not those two), each wrapped in the
app's own user middleware stack (built the way Starlette
builds it), so request id, body limit, headers, access log, metrics, security headers and the
time limit apply unchanged. Everything else - and these paths when the lean dispatch does not
take them as-is (another method, a trailing slash, a mounted ``root_path``, FastAPI's native
OpenTelemetry switched on) - goes through FastAPI, whose routes call the same data plane.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from src.serve.lean_predict import LeanPredict, lean_target
from src.serve.oip.lean import LeanInfer, infer_target


class ServeApp(FastAPI):
    """FastAPI, with ``POST /predict`` and ``POST /predict/batch`` handed to
    :attr:`lean_predict` (when set) inside the app's user middleware, before FastAPI's own
    layers (see the module docstring)."""

    lean_predict: LeanPredict | None = None
    _lean_stack: ASGIApp | None = None
    #: The Open Inference Protocol's inference paths, dispatched the same way (oip/lean.py).
    lean_infer: LeanInfer | None = None
    _lean_infer_stack: ASGIApp | None = None

    def _build_lean_stack(self, lean: ASGIApp | None = None) -> ASGIApp | None:
        telemetry: Any = getattr(self, "_native_telemetry", None)
        app: ASGIApp | None = lean or self.lean_predict
        if app is None or (telemetry is not None and telemetry.enabled()):
            return None  # FastAPI's OpenTelemetry must see every request: no shortcut
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch the lean routes; everything else is FastAPI's."""
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and lean_target(scope["path"]) is not None
            and not scope.get("root_path")
            and not self.root_path
        ):
            stack = self._lean_stack
            if stack is None:
                stack = self._lean_stack = self._build_lean_stack() or super().__call__
            scope["app"] = self
            await stack(scope, receive, send)
            return
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and self.lean_infer is not None
            and infer_target(scope["path"]) is not None
            and not scope.get("root_path")
            and not self.root_path
        ):
            stack = self._lean_infer_stack
            if stack is None:
                stack = self._lean_infer_stack = (
                    self._build_lean_stack(self.lean_infer) or super().__call__
                )
            scope["app"] = self
            await stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
