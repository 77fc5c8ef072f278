"""Fixtures of the backend tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from tests.artifact_factory import BuiltArtifact, build_iris_artifact
from tests.unit_tests.serve.backends.support import LogLines


@pytest.fixture
def iris_onnx(artifacts: Path) -> BuiltArtifact:
    """The iris pipeline published with model.onnx."""
    return build_iris_artifact(artifacts, with_onnx=True)


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    """Messages logged during the test (from the moment the app exists)."""
    lines = LogLines()
    lines.start()
    yield lines
    with contextlib.suppress(ValueError):  # already removed by a logging reconfiguration
        logger.remove(lines.handler)
