"""Serve one traced request: which project module calls which while it is answered.

Run by test_request_trace.py as ``python -m tests.integration_tests.request_trace_runner
OUT.json`` with the service's settings in the environment. It binds 127.0.0.1 on a free port,
builds the app with ``create_app()`` and runs uvicorn in a thread whose threads (the event
loop and the inference workers) carry a ``threading.setprofile`` hook. Once the model is
loaded it prints ``ready <port>`` and starts recording; after the first ``POST /predict`` has
been counted it stops recording, shuts uvicorn down and writes to OUT.json:

* ``edges``: ``[caller module, callee module]`` for every call between two ``src.*`` modules;
* ``callbacks``: the same for calls of nested functions a module was handed (ASGI ``send`` and
  ``receive`` closures): the caller does not name the callee's module, so these are not edges;
* ``calls``: ``"module:qualname"`` -> number of calls of each project function.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import Counter
from types import FrameType
from typing import Any

import uvicorn

from src.serve.app import create_app

NESTED_FUNCTION_MARK = "<locals>"
GENERATOR_FLAGS = 0x20 | 0x80 | 0x200  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR
STARTUP_TIMEOUT_SECONDS = 120.0
REQUEST_TIMEOUT_SECONDS = 120.0


class Recorder:
    """The profile hook: call edges between ``src.*`` modules while :attr:`on` is true."""

    def __init__(self) -> None:
        self.on = False
        self.edges: set[tuple[str, str]] = set()
        self.callbacks: set[tuple[str, str]] = set()
        self.calls: Counter[str] = Counter()
        # A coroutine's frame gets a "call" event at every resumption: count it once. The
        # frames are kept so that their ids are not reused while recording.
        self._resumable: dict[int, FrameType] = {}
        self._lock = threading.Lock()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        """``sys.setprofile`` callback."""
        if not self.on or event != "call":
            return
        callee = frame.f_globals.get("__name__", "")
        if not callee.startswith("src."):
            return
        code = frame.f_code
        with self._lock:
            if code.co_flags & GENERATOR_FLAGS:
                if id(frame) in self._resumable:
                    resumed = True
                else:
                    self._resumable[id(frame)] = frame
                    resumed = False
            else:
                resumed = False
            if not resumed:
                self.calls[f"{callee}:{code.co_qualname}"] += 1
            caller_frame = frame.f_back
            caller = caller_frame.f_globals.get("__name__", "") if caller_frame else ""
            if caller.startswith("src.") and caller != callee:
                if NESTED_FUNCTION_MARK in code.co_qualname:
                    self.callbacks.add((caller, callee))
                else:
                    self.edges.add((caller, callee))

    def report(self) -> dict[str, Any]:
        """What was recorded, as JSON-ready data."""
        return {
            "edges": sorted(self.edges),
            "callbacks": sorted(self.callbacks),
            "calls": dict(sorted(self.calls.items())),
        }


def _predict_count(app: Any) -> float:
    """How many ``POST /predict`` requests the service has counted (finished)."""
    body, _ = app.state.serve.metrics.render()
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("serve_http_requests_total{") and 'route="/predict"' in line:
            total += float(line.rpartition(" ")[2])
    return total


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"request_trace_runner: {what} within {timeout:g} s")
        time.sleep(0.02)


def main(out_path: str) -> int:
    """Serve, record one request, write the report; returns the exit code."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app()
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", log_level="warning")
    )
    recorder = Recorder()
    threading.setprofile(recorder)  # every thread started from now on: uvicorn's and workers'
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait(
            lambda: server.started and app.state.serve.store.current is not None,
            STARTUP_TIMEOUT_SECONDS,
            "the service did not start with a model",
        )
        recorder.on = True
        print(f"ready {port}", flush=True)
        _wait(lambda: _predict_count(app) >= 1, REQUEST_TIMEOUT_SECONDS, "no POST /predict")
        recorder.on = False
    finally:
        server.should_exit = True
        thread.join(60)
        threading.setprofile(None)
        sock.close()
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump(recorder.report(), out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
