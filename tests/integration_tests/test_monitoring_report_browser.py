"""The offline drift report opens in headless Chromium without errors.

Skips when no Chromium is installed (Debian: ``apt-get install chromium``), unless
``REQUIRE_SYSTEM_TOOLS=1``, which turns the skip into a failure (CI images that ship it).
Set ``MONITORING_REPORT_SCREENSHOT=<path.png>`` to keep the screenshot for a look.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from src.serve.monitoring.report.cli import main as report_main
from tests.artifact_factory import IRIS_FEATURES, build_iris_artifact
from tests.system_tools import chromium
from tests.unit_tests.serve.monitoring.helpers import iris_traffic

pytestmark = pytest.mark.integration

BROWSER_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
]  # fmt: skip


def run_browser(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [binary, *BROWSER_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


def console_messages(stderr: str) -> list[str]:
    """Page console output (JS errors, CSP violations, failed loads) Chromium logged."""
    return [line for line in stderr.splitlines() if re.search(r":CONSOLE[:(\]]", line)]


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    binary = chromium()
    artifact = build_iris_artifact(tmp_path / "artifacts")
    rows, labels = iris_traffic(400, seed=31, shift={"petal_length": 3.0})
    frame = pd.DataFrame(rows, columns=IRIS_FEATURES)
    frame.loc[:4, "sepal_width"] = None
    frame["prediction"] = labels
    frame.to_csv(tmp_path / "production.csv", index=False)
    report = tmp_path / "report.html"
    assert report_main(
        ["--artifacts-dir", str(artifact.root), "--model-name", artifact.model_name,
         "--input", str(tmp_path / "production.csv"), "--output", str(report)]
    ) == 0  # fmt: skip

    dom = run_browser(binary, "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_messages(dom.stderr) == []
    html = dom.stdout
    assert 'id="psi-table"' in html
    assert 'id="quality-table"' in html
    for name in IRIS_FEATURES:
        assert (
            f'<article class="card feature" id="feature-{IRIS_FEATURES.index(name)}" '
            f'data-feature="{name}">' in html
        )
    assert html.count("<svg") == len(IRIS_FEATURES) + 1
    assert 'data-feature="petal_length" data-status="drift"' in html
    assert 'data-feature="sepal_length" data-status="ok"' in html

    screenshot = tmp_path / "report.png"
    shot = run_browser(
        binary, f"--screenshot={screenshot}", "--window-size=1280,2400", report.as_uri()
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_messages(shot.stderr) == []
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2400)
    assert len(data) > 50_000  # charts and tables, not a blank page
    keep = os.environ.get("MONITORING_REPORT_SCREENSHOT")
    if keep:
        shutil.copyfile(screenshot, keep)
