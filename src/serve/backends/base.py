"""The interface every inference backend implements, and the values it exchanges.

A backend turns validated rows (tuples of values in the metadata's feature order) into
:class:`Prediction` objects. It is built once per loaded model and must be thread-safe: the
inference service calls :meth:`Backend.predict` from a thread pool (or inline for calls
measured to be cheaper than the hop, see ``timing.py``). To add one, subclass
:class:`Backend` and choose it in :func:`~src.serve.backends.factory.create_backend`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, NamedTuple

Row = Sequence[Any]
Label = str | int | float | bool


class Prediction(NamedTuple):
    """One row's answer: the label (classifier) or value (regressor), and class probabilities."""

    prediction: Label
    probabilities: dict[str, float] | None


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
