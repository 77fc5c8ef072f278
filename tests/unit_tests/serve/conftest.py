"""Fixtures for the serving unit tests (none autouse: sibling test packages are unaffected)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from src.serve.app import create_app
from tests.artifact_factory import BuiltArtifact, build_iris_artifact
from tests.unit_tests.serve.helpers import SETTINGS_ENV_VARS, AppClient, make_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No serving env var leaks in from the caller; SERVE_CONFIG points at an empty file."""
    for name in SETTINGS_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty-config.yaml"
    empty.write_text("")
    monkeypatch.setenv("SERVE_CONFIG", str(empty))
    return monkeypatch


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """An empty artifacts directory."""
    root = tmp_path / "artifacts"
    root.mkdir()
    return root


@pytest.fixture
def iris(artifacts: Path) -> BuiltArtifact:
    """One published iris model (LATEST points at it)."""
    return build_iris_artifact(artifacts)


@pytest.fixture
def client(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> Iterator[AppClient]:
    """A running app serving the iris model."""
    with AppClient(create_app(make_settings(artifacts))) as running:
        yield running
