"""Per-API-key rate limit: token buckets, and the 429 with Retry-After a limited key gets."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from src.serve.app import create_app
from src.serve.ratelimit import RateLimiter
from src.serve.settings import SettingsError
from tests.unit_tests.serve.hardening_support import (
    build_signed,
    signed_settings,
)
from tests.unit_tests.serve.helpers import (
    ADMIN,
    API_KEY,
    AUTH,
    IRIS_ROW,
    OTHER_KEY,
    AppClient,
    assert_error,
    make_settings,
    metric_value,
)

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]


def test_rate_limit_is_off_by_default(client: AppClient) -> None:
    for _ in range(150):
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200
    assert client.app.state.serve.auth.limiter is None


def test_token_bucket_refills_at_the_configured_rate() -> None:
    now = [1000.0]
    limiter = RateLimiter(per_minute=120, burst=3, clock=lambda: now[0])
    key = hashlib.sha256(b"fake-key").digest()
    assert [limiter.wait_seconds(key) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait_seconds(key) == pytest.approx(0.5)  # 2 tokens a second
    now[0] += 0.5
    assert limiter.wait_seconds(key) == 0.0
    now[0] += 60  # a long pause refills only up to the burst size
    assert [limiter.wait_seconds(key) for _ in range(4)][-1] > 0
    other = hashlib.sha256(b"another-fake-key").digest()
    assert limiter.wait_seconds(other) == 0.0  # buckets are per key


def test_burst_defaults_to_the_per_minute_rate() -> None:
    assert RateLimiter(per_minute=30).capacity == 30
    assert RateLimiter(per_minute=0.5).capacity == 1


def test_rate_limit_answers_429_with_retry_after_per_key(artifacts: Path) -> None:
    build_signed(artifacts)
    settings = signed_settings(artifacts, rate_limit_per_minute=60, rate_limit_burst=3)
    with AppClient(create_app(settings)) as client:
        statuses = [client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code]
        statuses.append(
            client.post("/predict/batch", json={"records": [IRIS_ROW]}, headers=AUTH).status_code
        )
        statuses.append(client.get("/model", headers={"X-API-Key": API_KEY}).status_code)
        assert statuses == [200, 200, 200]
        limited = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        body = assert_error(limited, 429, "rate_limited")
        assert limited.headers["retry-after"] == "1"
        assert "60 requests per minute" in body["error"]["message"]
        assert limited.headers["x-content-type-options"] == "nosniff"
        assert API_KEY not in limited.text
        # Another key has its own bucket; the limited key is still limited.
        assert (
            client.post("/predict", json=IRIS_ROW, headers={"X-API-Key": OTHER_KEY}).status_code
            == 200
        )
        assert client.get("/model", headers=AUTH).status_code == 429
        # Unauthenticated and wrong-key requests get 401/403, never a bucket.
        assert client.post("/predict", json=IRIS_ROW).status_code == 401
        for i in range(20):
            wrong = client.post("/predict", json=IRIS_ROW, headers={"X-API-Key": f"fake-{i}"})
            assert wrong.status_code == 403
        buckets = client.app.state.serve.auth.limiter._buckets
        assert len(buckets) == 2  # API_KEY and OTHER_KEY only
        assert all(API_KEY.encode() not in digest for digest in buckets)
        assert set(buckets) == {hashlib.sha256(k.encode()).digest() for k in (API_KEY, OTHER_KEY)}
        # Health and metrics are unauthenticated and never limited.
        for _ in range(10):
            assert client.get("/health").status_code == 200
        text = client.get("/metrics").text
        assert (
            metric_value(text, "serve_http_requests_total", {"route": "/predict", "status": "429"})
            == 1
        )
        time.sleep(1.05)  # one token back (60 per minute)
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200


def test_rate_limit_covers_admin_keys_too(artifacts: Path) -> None:
    build_signed(artifacts)
    settings = signed_settings(artifacts, rate_limit_per_minute=1, rate_limit_burst=1)
    with AppClient(create_app(settings)) as client:
        assert client.post("/admin/reload", headers=ADMIN).status_code == 200
        limited = client.post("/admin/reload", headers=ADMIN)
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) == 60


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"rate_limit_per_minute": -1}, "RATE_LIMIT_PER_MINUTE"),
        ({"rate_limit_per_minute": 10, "rate_limit_burst": 0}, "RATE_LIMIT_BURST"),
        ({"request_timeout_seconds": -1}, "REQUEST_TIMEOUT_SECONDS"),
    ],
)
def test_bad_limit_settings_stop_start_up(
    artifacts: Path, overrides: dict[str, Any], name: str
) -> None:
    with pytest.raises(SettingsError, match=name):
        make_settings(artifacts, **overrides)
