"""A backend's answers: plain lists for small calls, a finiteness verdict for larger ones."""

from __future__ import annotations

import math

import numpy as np

from src.serve.backends.answers import FINITE_CHECK_MIN_ROWS, answers, finite_labels
from src.serve.backends.base import Prediction, Predictions


def _rows(n: int, value: float = 0.5) -> tuple[list[Prediction], np.ndarray]:
    outputs = np.full((n, 2), value)
    return [Prediction("a", {"a": value, "b": value}) for _ in range(n)], outputs


def test_small_calls_are_plain_lists_the_data_plane_checks_itself() -> None:
    items, outputs = _rows(FINITE_CHECK_MIN_ROWS - 1, math.nan)
    got = answers(iter(items), len(items), outputs)
    assert type(got) is list
    assert got == items


def test_larger_calls_say_whether_every_output_is_finite() -> None:
    n = FINITE_CHECK_MIN_ROWS
    items, outputs = _rows(n)
    finite = answers(iter(items), n, outputs)
    assert isinstance(finite, Predictions)
    assert finite == items
    assert finite.all_finite is True
    outputs[-1, 0] = math.inf
    assert answers(iter(items), n, outputs).all_finite is False
    assert answers(iter(items), n, np.full((n, 2), 0.5), labels_finite=False).all_finite is False


def test_labels_are_finite_unless_a_float_label_is_nan_or_infinite() -> None:
    assert finite_labels(["setosa", 1, 2.5, True])
    assert not finite_labels([1.0, math.nan])
    assert not finite_labels([-math.inf])
