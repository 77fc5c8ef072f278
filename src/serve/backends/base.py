"""The interface every inference backend implements, and the values it exchanges.

A backend turns validated rows (tuples of values in the metadata's feature order) into
:class:`Prediction` objects. It is built once per loaded model and must be thread-safe: the
inference service calls :meth:`Backend.predict` from a thread pool (or inline for calls
measured to be cheaper than the hop, see ``timing.py``). To add one, subclass
:class:`Backend` and choose it in :func:`~src.serve.backends.factory.create_backend`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np

Row = Sequence[Any]
Label = str | int | float | bool


class Prediction(NamedTuple):
    """One row's answer: the label (classifier) or value (regressor), and class probabilities."""

    prediction: Label
    probabilities: dict[str, float] | None


#: Below this many rows one numpy pass (about 1.3 us of call overhead) costs more than the
#: data plane's check of each number in Python (about 0.15 us a row).
FINITE_CHECK_MIN_ROWS = 8


class Predictions(list[Prediction]):
    """A backend's answers in row order, with what the backend learned about them in one
    vectorised pass over its output arrays: ``all_finite`` is True when no prediction or
    probability is NaN or infinite, False when one is, None when not checked. The data plane's
    finite-output check reads it instead of looking at every number of a large batch again.
    """

    __slots__ = ("all_finite",)

    def __init__(self, items: Iterable[Prediction] = (), *, all_finite: bool | None = None) -> None:
        super().__init__(items)
        self.all_finite = all_finite


class NumericRows(list[Row]):
    """Validated rows of an all-number model that also come as one float64 matrix (rows x
    features in feature order, NaN for a null), built once by the request parser; backends
    and hooks read ``matrix`` instead of converting the rows again."""

    __slots__ = ("matrix",)

    def __init__(self, rows: Iterable[Row], matrix: Any) -> None:
        super().__init__(rows)
        self.matrix = matrix


def answers(
    items: Iterable[Prediction], n_rows: int, outputs: Any, *, labels_finite: bool = True
) -> list[Prediction]:
    """A backend's ``items`` for ``n_rows`` rows: from :data:`FINITE_CHECK_MIN_ROWS` rows on, a
    :class:`Predictions` saying whether ``outputs`` (the model's output array) and the labels
    are all finite; below that a plain list, which the data plane checks number by number."""
    if n_rows < FINITE_CHECK_MIN_ROWS:
        return list(items)
    return Predictions(items, all_finite=labels_finite and bool(np.isfinite(outputs).all()))


def finite_labels(labels: Iterable[Any]) -> bool:
    """True when no class label is a NaN or infinite float (checked once per loaded model)."""
    return not any(isinstance(label, float) and not math.isfinite(label) for label in labels)


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
        """Predict every row (each a sequence of values in feature order), in order; a
        :class:`Predictions` when the backend checked finiteness on its output arrays."""
