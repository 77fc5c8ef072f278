"""Helpers shared by the backend tests: iris records, an app client, captured log lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loguru import logger

from src.serve.app import create_app
from tests.artifact_factory import BuiltArtifact, iris_frame
from tests.unit_tests.serve.helpers import AppClient, make_settings


def iris_records() -> list[dict[str, float]]:
    """Every iris row as a request record."""
    frame, _ = iris_frame()
    return frame.to_dict(orient="records")


class LogLines(list[str]):
    """Messages logged from :meth:`start` (create_app reconfigures loguru: start after it)."""

    handler: int | None = None

    def start(self) -> None:
        """Capture every message from now on."""
        self.handler = logger.add(lambda m: self.append(str(m.record["message"])), level="INFO")


def app_client(artifacts: Path, log: LogLines | None = None, **settings: Any) -> AppClient:
    """A client of a new app over ``artifacts``; ``log`` captures from the app's creation."""
    app = create_app(make_settings(artifacts, **settings))
    if log is not None:
        log.start()
    return AppClient(app)


def corrupt_onnx(built: BuiltArtifact) -> None:
    """Flip a byte of ``model.onnx``: same size, metadata keeps the old sha256."""
    path = built.directory / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
