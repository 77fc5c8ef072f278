"""The hook registry: every hook is told, in order, and one failing hook breaks nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from src.serve.backends.base import Prediction, Row
from src.serve.hooks import HookRegistry
from src.serve.loaded_model import LoadedModel


class Recorder:
    """Records the calls it receives under its own name into a shared log."""

    def __init__(self, name: str, log: list[tuple[str, str, Any]]) -> None:
        self.name = name
        self.log = log

    def on_model_loaded(self, model: LoadedModel, previous: LoadedModel | None) -> None:
        """Record the swap."""
        self.log.append((self.name, "loaded", (model, previous)))

    def on_predictions(
        self, model: LoadedModel, rows: Sequence[Row], predictions: Sequence[Prediction]
    ) -> None:
        """Record the rows."""
        self.log.append((self.name, "predictions", list(rows)))


class Broken(Recorder):
    """Records, then fails."""

    def on_model_loaded(self, model: LoadedModel, previous: LoadedModel | None) -> None:
        """Fail after recording."""
        super().on_model_loaded(model, previous)
        raise RuntimeError("hook bug")

    def on_predictions(
        self, model: LoadedModel, rows: Sequence[Row], predictions: Sequence[Prediction]
    ) -> None:
        """Fail after recording."""
        super().on_predictions(model, rows, predictions)
        raise RuntimeError("hook bug")


@pytest.fixture
def model() -> LoadedModel:
    """A stand-in model: the registry only passes it along."""
    return object()  # type: ignore[return-value]


def test_every_hook_is_told_in_registration_order(model: LoadedModel) -> None:
    log: list[tuple[str, str, Any]] = []
    hooks = HookRegistry()
    hooks.add(Recorder("first", log))
    hooks.add(Recorder("second", log))

    hooks.model_loaded(model, None)
    hooks.predictions(model, [(1.0,), (2.0,)], [Prediction(1, None), Prediction(2, None)])

    assert log == [
        ("first", "loaded", (model, None)),
        ("second", "loaded", (model, None)),
        ("first", "predictions", [(1.0,), (2.0,)]),
        ("second", "predictions", [(1.0,), (2.0,)]),
    ]


def test_a_failing_hook_neither_raises_nor_silences_the_hooks_after_it(
    model: LoadedModel,
) -> None:
    log: list[tuple[str, str, Any]] = []
    hooks = HookRegistry()
    hooks.add(Broken("broken", log))
    hooks.add(Recorder("after", log))

    hooks.model_loaded(model, None)
    hooks.predictions(model, [(1.0,)], [Prediction(1, None)])

    assert [(name, event) for name, event, _ in log] == [
        ("broken", "loaded"),
        ("after", "loaded"),
        ("broken", "predictions"),
        ("after", "predictions"),
    ]
