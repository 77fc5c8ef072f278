"""Abuse resistance across the service: logs that never hold a key or a signing secret, and
every guard (rate limit, security headers, time limit, finite output) on both adapters of the
data plane. The guards' own behaviour is tested in test_ratelimit.py and middleware/."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from src.serve.app import create_app
from src.serve.backends.base import Prediction
from tests.unit_tests.serve.hardening_support import (
    NEW_KEY,
    build_signed,
    captured_logs,
    hang_backend,
    signed_settings,
)
from tests.unit_tests.serve.helpers import (
    ADMIN,
    ADMIN_KEY,
    API_KEY,
    AUTH,
    IRIS_ROW,
    OTHER_KEY,
    AppClient,
    assert_error,
)

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]


# --- logs never hold a key or a signing secret ----------------------------------------------------


def test_logs_under_traffic_hold_no_api_key_and_no_signing_secret(artifacts: Path) -> None:
    build_signed(artifacts)
    wrong_keys = ["fake-wrong-key-AAAA1111", "fake-wrong-key-BBBB2222"]
    settings = signed_settings(artifacts, log_level="DEBUG", log_json=True)
    app = create_app(settings)  # configures logging: capture after it
    with captured_logs() as logs, AppClient(app) as client:
        traffic = [
            ("POST", "/predict", {"json": IRIS_ROW, "headers": AUTH}),
            ("POST", "/predict", {"json": IRIS_ROW, "headers": {"X-API-Key": API_KEY}}),
            ("POST", "/predict", {"json": IRIS_ROW, "headers": {"X-API-Key": OTHER_KEY}}),
            ("POST", "/predict", {"json": {}, "headers": AUTH}),
            ("POST", "/predict", {"json": IRIS_ROW}),
            (
                "POST",
                "/predict",
                {"json": IRIS_ROW, "headers": {"Authorization": f"Bearer {wrong_keys[0]}"}},
            ),
            ("POST", "/predict", {"json": IRIS_ROW, "headers": {"X-API-Key": wrong_keys[1]}}),
            (
                "POST",
                "/predict",
                {"json": IRIS_ROW, "headers": {"Authorization": f"Basic {API_KEY}"}},
            ),
            ("GET", "/model", {"headers": AUTH}),
            ("POST", "/admin/reload", {"headers": ADMIN}),
            ("POST", "/admin/reload", {"headers": AUTH}),
            ("GET", f"/nope?api_key={API_KEY}", {}),
            ("GET", f"/predict/{API_KEY}", {}),
        ]
        for method, path, kwargs in traffic * 3:
            client.request(method, path, **kwargs)
        model = client.app.state.serve.store.current

        def explode(rows: Any) -> Any:
            raise RuntimeError("the model failed")

        object.__setattr__(model.backend, "predict", explode)
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 500
    text = logs.getvalue()
    assert text.count("POST /predict") >= 20  # the traffic was logged...
    assert "Traceback" in text or "RuntimeError" in text  # ...the 500 with its traceback...
    for secret in (API_KEY, OTHER_KEY, ADMIN_KEY, *wrong_keys, NEW_KEY[1].decode()):
        assert secret not in text  # ...and no key, no secret anywhere


# --- both adapters of the data plane: the lean ASGI path and FastAPI's routes ------------------


@pytest.fixture(params=["lean", "fastapi"])
def request_path(request: pytest.FixtureRequest) -> str:
    return request.param


def _use_path(app: Any, path: str) -> None:
    """``lean``: POST /predict(/batch) through the lean ASGI adapter (what the service runs);
    ``fastapi``: the same routes through FastAPI's router (the lean adapter switched off)."""
    if path == "fastapi":
        app.lean_predict = None
        app._lean_stack = None
    else:
        assert app.lean_predict is not None


def test_every_guard_applies_on_both_request_paths(artifacts: Path, request_path: str) -> None:
    build_signed(artifacts)
    # Well above an ordinary request's time: on a loaded CI machine the test process can
    # stall its event loop for most of a second.
    settings = signed_settings(
        artifacts, rate_limit_per_minute=60, rate_limit_burst=2, request_timeout_seconds=2.0
    )
    app = create_app(settings)
    _use_path(app, request_path)
    with AppClient(app) as client:
        ok = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert ok.status_code == 200
        bad = client.post("/predict/batch", json={"records": []}, headers={"X-API-Key": API_KEY})
        assert_error(bad, 422, "invalid_input")
        for response in (ok, bad):
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["content-security-policy"].startswith("default-src 'none'")
            assert response.headers["cache-control"] == "no-store"
        limited = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert_error(limited, 429, "rate_limited")
        assert limited.headers["retry-after"] == "1"
        # another key: the timeout and the finite-output guard
        other = {"X-API-Key": OTHER_KEY}
        done = hang_backend(client, 3.0)
        assert_error(client.post("/predict", json=IRIS_ROW, headers=other), 504, "request_timeout")
        done.wait(10)
        model = client.app.state.serve.store.current

        def nan(rows: Any) -> Any:
            return [Prediction("setosa", {"setosa": math.nan})] * len(rows)

        object.__setattr__(model.backend, "predict", nan)
        unscorable = client.post("/predict/batch", json={"records": [IRIS_ROW]}, headers=other)
        assert_error(unscorable, 422, "unscorable_input")
        routes = {
            line.split('route="')[1].split('"')[0]
            for line in client.get("/metrics").text.splitlines()
            if line.startswith("serve_http_requests_total{")
        }
        assert {"/predict", "/predict/batch"} <= routes
