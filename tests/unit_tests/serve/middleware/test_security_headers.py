"""Security headers on every response; a strict script policy on the HTML docs pages."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from src.serve.app import create_app
from src.serve.middleware.security_headers import (
    API_CSP,
    MAX_HTML_BYTES,
    HeldPage,
    inline_script_hashes,
)
from tests.unit_tests.serve.hardening_support import (
    build_signed,
    signed_settings,
)
from tests.unit_tests.serve.helpers import (
    ADMIN,
    AUTH,
    IRIS_ROW,
    AppClient,
    make_settings,
)

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]


EVERY_KIND_OF_RESPONSE = [
    ("GET", "/health", {}, 200),
    ("GET", "/health/live", {}, 200),
    ("POST", "/predict", {"json": IRIS_ROW, "headers": AUTH}, 200),
    ("POST", "/predict/batch", {"json": {"records": [IRIS_ROW]}, "headers": AUTH}, 200),
    ("GET", "/model", {"headers": AUTH}, 200),
    ("POST", "/admin/reload", {"headers": ADMIN}, 200),
    ("GET", "/metrics", {}, 200),
    ("GET", "/openapi.json", {}, 200),
    ("POST", "/predict", {"json": IRIS_ROW}, 401),
    ("POST", "/predict", {"json": IRIS_ROW, "headers": {"X-API-Key": "x"}}, 403),
    ("POST", "/predict", {"content": b"x" * 2_000_000, "headers": AUTH}, 413),
    ("POST", "/predict", {"content": b"x", "headers": {**AUTH, "Content-Type": "text/plain"}}, 415),
    ("POST", "/predict", {"json": {}, "headers": AUTH}, 422),
    ("GET", "/does-not-exist", {}, 404),
    ("DELETE", "/predict", {}, 405),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), EVERY_KIND_OF_RESPONSE)
def test_every_response_carries_the_security_headers(
    client: AppClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    r = client.request(method, path, **kwargs)
    assert r.status_code == status
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    csp = r.headers["content-security-policy"]
    assert csp.startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp  # nothing may run from an API response


def test_the_503_and_500_responses_carry_them_too(artifacts: Path) -> None:
    with AppClient(create_app(make_settings(artifacts))) as client:
        r = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert r.status_code == 503
        assert r.headers["x-content-type-options"] == "nosniff"
        build_signed(artifacts)
    with AppClient(create_app(signed_settings(artifacts))) as client:
        model = client.app.state.serve.store.current

        def explode(rows: Any) -> Any:
            raise RuntimeError("boom")

        object.__setattr__(model.backend, "predict", explode)
        r = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert r.status_code == 500
        assert r.headers["content-security-policy"].startswith("default-src 'none'")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_render_with_a_strict_script_policy(client: AppClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in r.text
    assert r.headers["x-frame-options"] == "DENY"
    csp = dict(
        part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";")
    )
    assert csp["default-src"] == "'none'"
    scripts = csp["script-src"].split()
    assert scripts[0] == "'self'"  # the assets come from this service
    assert "https:" not in r.headers["content-security-policy"]  # no CDN, no fonts site
    assert "'unsafe-inline'" not in scripts
    assert "'unsafe-eval'" not in scripts
    assert "'none'" not in scripts  # 'none' must stand alone or not at all
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    expected = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    }
    assert expected == {s for s in scripts if s.startswith("'sha256-")}
    assert csp["connect-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"


def test_inline_script_hashes_ignore_external_scripts() -> None:
    html = b'<script src="https://x/y.js"></script><script>run()</script><SCRIPT>b()</SCRIPT >'
    hashes = inline_script_hashes(html)
    assert hashes == [
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in (b"run()", b"b()")
    ]


@pytest.mark.parametrize(
    ("path", "asset"),
    [
        ("/docs", "swagger-ui-bundle.js"),
        ("/docs", "swagger-ui.css"),
        ("/redoc", "redoc.standalone.js"),
    ],
)
def test_docs_assets_are_served_by_the_service_itself(
    client: AppClient, path: str, asset: str
) -> None:
    page = client.get(path).text
    assert f'"/docs-assets/{asset}"' in page
    assert "cdn.jsdelivr.net" not in page
    assert "fonts.googleapis.com" not in page
    r = client.get(f"/docs-assets/{asset}")
    assert r.status_code == 200
    assert len(r.content) > 10_000  # the real bundle, from the installed package
    assert r.headers["x-content-type-options"] == "nosniff"
    kind = "css" if asset.endswith(".css") else "javascript"
    assert kind in r.headers["content-type"]


def test_docs_assets_are_counted_under_their_mount_path(client: AppClient) -> None:
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200
    metrics = client.get("/metrics").text
    assert 'route="/docs-assets"' in metrics


def test_an_html_page_sent_in_chunks_is_held_until_complete_then_hashed() -> None:
    page = HeldPage({"type": "http.response.start", "status": 200, "headers": [HTML_TYPE]})
    assert page.add(_body(b"<html><script>one()</scr", more=True)) == []
    start, body = page.add(_body(b"ipt></html>"))
    headers = dict(start["headers"])
    digest = base64.b64encode(hashlib.sha256(b"one()").digest()).decode()
    assert f"'sha256-{digest}'" in headers[b"content-security-policy"].decode()
    assert headers[b"x-frame-options"] == b"DENY"
    assert body["body"] == b"<html><script>one()</script></html>"
    assert page.add(_body(b"")) == [_body(b"")]  # after the start: passed through


def test_an_html_page_over_the_buffer_limit_goes_out_with_the_api_policy() -> None:
    page = HeldPage({"type": "http.response.start", "status": 200, "headers": [HTML_TYPE]})
    big = b"x" * (MAX_HTML_BYTES + 1)
    start, body = page.add(_body(big, more=True))
    assert dict(start["headers"])[b"content-security-policy"] == API_CSP.encode()
    assert body == _body(big, more=True)
    rest = _body(b"tail")
    assert page.add(rest) == [rest]


HTML_TYPE = (b"content-type", b"text/html; charset=utf-8")


def _body(data: bytes, *, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}
