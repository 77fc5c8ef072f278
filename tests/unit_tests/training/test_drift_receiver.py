"""drift_receiver over HTTP: a simulated Alertmanager notification reaches a fake Argo Events
webhook as exactly one event for the right model."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.request
from typing import ClassVar

import pytest

from src.training.drift_events import DriftEventPublisher, post_event
from src.training.drift_receiver import start_receiver
from tests.unit_tests.training.test_drift_events import alert, notification


class _Webhook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list] = []  # replaced per server
    fail = False

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if type(self).fail:
            self.send_response(503)
            self.end_headers()
            return
        type(self).received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    handler = type("Webhook", (_Webhook,), {"received": [], "fail": False})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield handler, f"http://{host}:{port}/metaflow-event"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def receiver(webhook):
    _, url = webhook
    publisher = DriftEventPublisher(send=lambda event: post_event(url, event, timeout=5))
    server, thread = start_receiver(publisher)
    yield server.url
    server.shutdown()
    server.server_close()
    thread.join()


def post(url, body: bytes):
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_simulated_alert_reaches_argo_events_once(webhook, receiver):
    handler, _ = webhook
    body = json.dumps(notification(alert(feature="a"), alert(feature="b"))).encode()
    status, answer = post(f"{receiver}/alerts", body)
    assert status == 200
    assert [e["name"] for e in answer["events"]] == ["model_drift.iris_classifier"]
    # Alertmanager re-sends the same notification every repeat_interval.
    assert post(f"{receiver}/alerts", body) == (200, {"events": []})
    (event,) = handler.received
    assert event["name"] == "model_drift.iris_classifier"
    assert event["payload"]["model_name"] == "iris_classifier"


def test_webhook_failure_answers_502_and_the_retry_publishes(webhook, receiver):
    handler, _ = webhook
    handler.fail = True
    body = json.dumps(notification(alert())).encode()
    status, answer = post(f"{receiver}/alerts", body)
    assert status == 502
    assert "not accepted" in answer["error"]
    handler.fail = False
    assert post(f"{receiver}/alerts", body)[0] == 200
    assert len(handler.received) == 1


def test_bad_requests(receiver):
    assert post(f"{receiver}/alerts", b"{not json")[0] == 400
    assert post(f"{receiver}/alerts", b'{"alerts": 3}')[0] == 400
    assert post(f"{receiver}/other", b"{}")[0] == 404
    with urllib.request.urlopen(f"{receiver}/healthz", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ok"}


def test_main_refuses_to_start_without_an_event_url(monkeypatch, capsys):
    from src.training.drift_receiver import main

    monkeypatch.delenv("METAFLOW_ARGO_EVENTS_WEBHOOK_URL", raising=False)
    assert main(["--port", "0"]) == 2
    assert "METAFLOW_ARGO_EVENTS_WEBHOOK_URL" in capsys.readouterr().err
