"""CORS_ALLOW_ORIGINS: Starlette's CORS middleware for the listed origins, nothing by default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from src.serve.app import create_app
from src.serve.errors import SettingsError
from tests.artifact_factory import BuiltArtifact
from tests.unit_tests.serve.helpers import AUTH, IRIS_ROW, AppClient, make_settings

ALLOWED = "https://app.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


@pytest.fixture
def cors_client(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> Iterator[AppClient]:
    settings = make_settings(artifacts, cors_allow_origins=f"{ALLOWED}, http://127.0.0.1:3000")
    with AppClient(create_app(settings)) as running:
        yield running


def test_a_preflight_from_an_allowed_origin_is_answered(cors_client: AppClient) -> None:
    r = cors_client.request("OPTIONS", "/predict", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert "access-control-allow-credentials" not in r.headers
    # the actual request: answered with the origin and the headers a script may read
    answer = cors_client.post("/predict", json=IRIS_ROW, headers={"Origin": ALLOWED, **AUTH})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


def test_another_origin_gets_no_cors_headers(cors_client: AppClient) -> None:
    other = {"Origin": "https://evil.example.net", **PREFLIGHT}
    r = cors_client.request("OPTIONS", "/predict", headers=other)
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers
    answer = cors_client.post(
        "/predict", json=IRIS_ROW, headers={**AUTH, "Origin": other["Origin"]}
    )
    assert "access-control-allow-origin" not in answer.headers


def test_by_default_there_is_no_cors(client: AppClient) -> None:
    r = client.request("OPTIONS", "/predict", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert r.status_code == 405
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("origin", ["app.example.com", "https://app.example.com/path", "ftp://x"])
def test_an_origin_that_is_not_one_is_refused(
    clean_env: pytest.MonkeyPatch, artifacts: Path, origin: str
) -> None:
    with pytest.raises(SettingsError, match="CORS_ALLOW_ORIGINS"):
        make_settings(artifacts, cors_allow_origins=origin)
