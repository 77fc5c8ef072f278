"""The interface every inference backend implements, and the values it exchanges.

A backend turns validated rows (tuples of values in the metadata's feature order) into
:class:`Prediction` objects. It is built once per loaded model and must be thread-safe: the
inference service calls :meth:`Backend.predict` from a thread pool (or inline for calls
measured to be cheaper than the hop, see ``timing.py``). To add one, subclass
:class:`Backend` and choose it in :func:`~src.serve.backends.factory.create_backend`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

Row = Sequence[Any]
Label = str | int | float | bool


class Prediction(NamedTuple):
    """One row's answer: the label (classifier) or value (regressor), and class probabilities."""

    prediction: Label
    probabilities: dict[str, float] | None


class Backend(ABC):
    """Runs a loaded model. Implementations are immutable after construction and thread-safe.

    A swapped-out backend is simply dropped: requests still running on it finish normally and
    garbage collection frees it, so backends must not depend on an explicit close.
    """

    name: ClassVar[str]
    #: True when answers carry class probabilities (classifiers exposing them).
    has_probabilities: bool = False

    @abstractmethod
    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict every row (each a sequence of values in feature order), in order."""
