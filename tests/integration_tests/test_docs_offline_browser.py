"""/docs (Swagger UI) and /redoc render in headless Chromium with every outside host unreachable.

The service is a real process on 127.0.0.1; Chromium resolves no other host name (its
resolver maps every name but 127.0.0.1 to "not found") and has background networking off, so a
page that still needed a CDN would render blank and log a failed load. Skips without Chromium
unless ``REQUIRE_SYSTEM_TOOLS=1``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.artifact_factory import build_iris_artifact
from tests.integration_tests.test_monitoring_report_browser import console_messages, run_browser
from tests.server_process import ServerPool
from tests.system_tools import chromium

pytestmark = pytest.mark.integration

API_KEY = "docs-browser-key-0123456789"  # pragma: allowlist secret
OFFLINE = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=15000",  # let the UI fetch /openapi.json and render before the dump
]


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    artifact = build_iris_artifact(tmp_path / "artifacts")
    with ServerPool(tmp_path, API_KEYS=API_KEY, ALLOW_UNSIGNED="true") as start:
        yield start(artifact.root, ready_path="/health").url


def test_swagger_ui_renders_the_operations_offline(server_url: str) -> None:
    binary = chromium()
    page = run_browser(binary, *OFFLINE, "--dump-dom", f"{server_url}/docs")
    assert page.returncode == 0, page.stderr[-2000:]
    assert console_messages(page.stderr) == []
    html = page.stdout
    assert 'class="swagger-ui' in html
    paths = set(re.findall(r'data-path="([^"]+)"', html))
    assert {"/predict", "/predict/batch", "/health"} <= paths, sorted(paths)


def test_redoc_renders_offline(server_url: str) -> None:
    binary = chromium()
    page = run_browser(binary, *OFFLINE, "--dump-dom", f"{server_url}/redoc")
    assert page.returncode == 0, page.stderr[-2000:]
    # ReDoc's footer logo points at its vendor's site: the page policy blocks it, nothing else
    blocked = [m for m in console_messages(page.stderr) if "cdn.redoc.ly/redoc/logo" not in m]
    assert blocked == []
    assert "/predict/batch" in page.stdout
    assert "MLOps toolset model server" in page.stdout
