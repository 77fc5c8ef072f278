"""The API version: the installed package version (``mlops-toolset``), git-tagged on release."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

PACKAGE_NAME = "mlops-toolset"
FALLBACK_VERSION = "0.0.0+local"


def api_version() -> str:
    """Return the installed package version, or ``0.0.0+local`` when not installed."""
    try:
        return version(PACKAGE_NAME)
    except PackageNotFoundError:
        return FALLBACK_VERSION


API_VERSION = api_version()
