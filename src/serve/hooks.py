"""Extension points called by the serving core: model swaps and predictions.

A hook never breaks serving: exceptions it raises are logged and swallowed. ``on_predictions``
runs in the worker thread that made the prediction (off the event loop), once per request with
every row of it, so it must be cheap (e.g. update counters or a bounded window). The drift
monitor registers one with ``app.state.serve.hooks.add(...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from loguru import logger

if TYPE_CHECKING:
    from src.serve.backends.base import Prediction, Row
    from src.serve.loaded_model import LoadedModel


class ServeHook(Protocol):
    """What a hook implements (both methods; make one a no-op if unneeded)."""

    def on_model_loaded(self, model: LoadedModel, previous: LoadedModel | None) -> None:
        """A new model was verified, warmed up and swapped in."""

    def on_predictions(
        self, model: LoadedModel, rows: Sequence[Row], predictions: Sequence[Prediction]
    ) -> None:
        """``model`` answered ``rows`` (feature-ordered values) with ``predictions``."""


class HookRegistry:
    """An ordered list of hooks, each isolated from the others' failures."""

    def __init__(self) -> None:
        self._hooks: tuple[ServeHook, ...] = ()

    def add(self, hook: ServeHook) -> None:
        """Register a hook (copy-on-write, so calls in flight are unaffected)."""
        self._hooks = (*self._hooks, hook)

    def model_loaded(self, model: LoadedModel, previous: LoadedModel | None) -> None:
        """Notify every hook of a model swap."""
        for hook in self._hooks:
            try:
                hook.on_model_loaded(model, previous)
            except Exception:
                logger.exception("hook {} failed on model load", type(hook).__name__)

    def predictions(
        self, model: LoadedModel, rows: Sequence[Row], predictions: Sequence[Prediction]
    ) -> None:
        """Notify every hook of answered rows."""
        for hook in self._hooks:
            try:
                hook.on_predictions(model, rows, predictions)
            except Exception:
                logger.exception("hook {} failed on predictions", type(hook).__name__)


class OnlyModel:
    """Passes a hook the events of one model only (e.g. the drift monitor, which watches the
    default model of a process serving several)."""

    def __init__(self, hook: ServeHook, model_name: str) -> None:
        self.hook = hook
        self.model_name = model_name

    def on_model_loaded(self, model: LoadedModel, previous: LoadedModel | None) -> None:
        """Forward a swap of the watched model."""
        if model.name == self.model_name:
            self.hook.on_model_loaded(model, previous)

    def on_predictions(
        self, model: LoadedModel, rows: Sequence[Row], predictions: Sequence[Prediction]
    ) -> None:
        """Forward answered rows of the watched model."""
        if model.name == self.model_name:
            self.hook.on_predictions(model, rows, predictions)
