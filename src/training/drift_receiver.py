"""Alertmanager webhook receiver that starts retraining when a model drifts.

    python -m src.training.drift_receiver --port 9095 \\
        --event-url http://metaflow-webhook-eventsource-svc.argo-events:12000/metaflow-event

``POST /alerts`` takes Alertmanager's webhook notification and publishes one Argo Events
event per drifting model (``src.training.drift_events``); ``GET /healthz`` answers 200.
Answers 200 with the published events, 400 for a body that is not a notification, and 502
when the event webhook fails (Alertmanager then retries). Settings may also come from
``DRIFT_RECEIVER_HOST``, ``DRIFT_RECEIVER_PORT``, ``METAFLOW_ARGO_EVENTS_WEBHOOK_URL`` and
``DRIFT_EVENT_PREFIX``. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from src.training.drift_events import (
    EVENT_PREFIX,
    DriftEventPublisher,
    EventPublishError,
    NotificationError,
    post_event,
)

MAX_BODY_BYTES = 1 << 20
ALERTS_PATH = "/alerts"


class DriftReceiver(ThreadingHTTPServer):
    """The HTTP server; holds the publisher shared by all request threads."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], publisher: DriftEventPublisher) -> None:
        self.publisher = publisher
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: DriftReceiver

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(200, {"status": "ok"})
        else:
            self._answer(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        if self.path != ALERTS_PATH:
            self._answer(404, {"error": f"no route {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._answer(413, {"error": "notification too large"})
            return
        try:
            notification = json.loads(self.rfile.read(length) or b"null")
            events = self.server.publisher.handle(notification)
        except (json.JSONDecodeError, NotificationError) as exc:
            self._answer(400, {"error": str(exc)})
            return
        except EventPublishError as exc:
            self.log_message("%s", exc)
            self._answer(502, {"error": str(exc)})
            return
        for event in events:
            self.log_message("published %s", event["name"])
        self._answer(200, {"events": events})


def start_receiver(
    publisher: DriftEventPublisher, host: str = "127.0.0.1", port: int = 0
) -> tuple[DriftReceiver, threading.Thread]:
    """Serve in a background thread; stop with ``server.shutdown(); server.server_close()``."""
    server = DriftReceiver((host, port), publisher)
    thread = threading.Thread(target=server.serve_forever, name="drift-receiver", daemon=True)
    thread.start()
    return server, thread


def main(argv: list[str] | None = None) -> int:
    """Run the receiver until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m src.training.drift_receiver")
    parser.add_argument("--host", default=os.environ.get("DRIFT_RECEIVER_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("DRIFT_RECEIVER_PORT", "9095"))
    )
    parser.add_argument(
        "--event-url",
        default=os.environ.get("METAFLOW_ARGO_EVENTS_WEBHOOK_URL"),
        help="the Argo Events webhook that receives the events",
    )
    parser.add_argument("--prefix", default=os.environ.get("DRIFT_EVENT_PREFIX", EVENT_PREFIX))
    args = parser.parse_args(argv)
    if not args.event_url:
        print("no --event-url (or METAFLOW_ARGO_EVENTS_WEBHOOK_URL) set", file=sys.stderr)
        return 2
    url = args.event_url
    publisher = DriftEventPublisher(send=lambda event: post_event(url, event), prefix=args.prefix)
    server = DriftReceiver((args.host, args.port), publisher)
    print(f"drift receiver on {server.url}{ALERTS_PATH} -> {url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
