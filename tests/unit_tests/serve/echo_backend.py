"""A recording backend and hook for tests of the inference service and the micro-batcher."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from src.serve.artifact import resolve
from src.serve.backends.base import Backend, Prediction, Row
from src.serve.loaded_model import LoadedModel, build_loaded_model
from tests.unit_tests.serve.helpers import make_settings


class EchoBackend(Backend):
    """Answers each row with its first value times ten; records every call; fails on "bad"."""

    name = "echo"

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[list[Any]] = []
        self.delay = delay
        self.threads: set[int] = set()

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        self.calls.append([row[0] for row in rows])
        self.threads.add(threading.get_ident())
        if any(row[0] == "bad" for row in rows):
            raise ValueError("this row breaks the model")
        if self.delay:
            time.sleep(self.delay)
        return [Prediction(row[0] * 10, None) for row in rows]


class RowCounter:
    """A hook that counts the rows it is told about."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def on_model_loaded(self, model: LoadedModel, previous: LoadedModel | None) -> None:
        """Unused."""

    def on_predictions(
        self, model: LoadedModel, rows: Sequence[Row], predictions: Sequence[Prediction]
    ) -> None:
        """Remember the rows."""
        self.rows.extend(row[0] for row in rows)


def echo_model(artifacts: Path, *, inline_max_rows: int = 0) -> LoadedModel:
    """The published iris model with an :class:`EchoBackend` in place of its own."""
    loaded = build_loaded_model(resolve(artifacts, "iris_classifier"), make_settings(artifacts))
    return dataclasses.replace(loaded, backend=EchoBackend(), inline_max_rows=inline_max_rows)


def run_scenario(coroutine: Any, timeout: float = 10.0) -> Any:
    """Run a scenario on a fresh event loop; a scenario that hangs fails instead."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))
