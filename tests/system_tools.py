"""Find a system tool a test needs (promtool, amtool, Chromium, wrk, ...).

A missing tool skips the test, unless ``REQUIRE_SYSTEM_TOOLS=1`` (CI images that ship the
tools), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil

import pytest


def system_tool(*names: str, package: str) -> str:
    """The path of the first of ``names`` found on PATH (Debian ``package`` installs it)."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    reason = f"{names[0]} not installed (Debian: apt-get install {package})"
    if os.environ.get("REQUIRE_SYSTEM_TOOLS") == "1":
        pytest.fail(f"{reason}; REQUIRE_SYSTEM_TOOLS=1 requires it")
    pytest.skip(reason)


def chromium() -> str:
    """A headless-capable Chromium or Chrome binary."""
    return system_tool("chromium", "chromium-browser", "google-chrome", package="chromium")
