"""A backend's answers as the data plane receives them: the list of predictions and, for
larger calls, whether every number in them is finite (one numpy pass over the model's output
arrays instead of the data plane looking at each number again)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from src.serve.backends.base import Prediction, Predictions

#: Below this many rows one numpy pass (about 1.3 us of call overhead) costs more than the
#: data plane's check of each number in Python (about 0.15 us a row).
FINITE_CHECK_MIN_ROWS = 8


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
