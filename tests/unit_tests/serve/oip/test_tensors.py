"""Tensor data: JSON (nested or flat) and the binary tensor data layout, both ways."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from src.serve.errors import InvalidInputError
from src.serve.oip.tensors import (
    NUMPY_DTYPES,
    binary_from_values,
    element_count,
    values_from_binary,
    values_from_json,
)


def test_nested_and_flat_json_data_are_the_same_tensor() -> None:
    nested = [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]
    assert values_from_json("INT32", nested, 8, "t") == list(range(1, 9))
    assert values_from_json("INT32", list(range(1, 9)), 8, "t") == list(range(1, 9))


@pytest.mark.parametrize("datatype", sorted(set(NUMPY_DTYPES) - {"BOOL"}))
def test_binary_round_trip_of_every_numeric_datatype(datatype: str) -> None:
    values = [0, 1, 2, 3]
    raw = binary_from_values(datatype, values)
    assert raw == np.asarray(values, dtype=NUMPY_DTYPES[datatype]).tobytes()
    assert values_from_binary(datatype, raw, 4, "t") == values


def test_bool_and_bytes_binary_layout() -> None:
    assert binary_from_values("BOOL", [True, False]) == b"\x01\x00"
    assert values_from_binary("BOOL", b"\x01\x00", 2, "t") == [True, False]
    raw = binary_from_values("BYTES", ["é", "ab"])
    assert raw == struct.pack("<I", 2) + "é".encode() + struct.pack("<I", 2) + b"ab"
    assert values_from_binary("BYTES", raw, 2, "t") == ["é", "ab"]


def test_element_count() -> None:
    assert element_count([3, 4], "t") == 12
    assert element_count([0], "t") == 0
    for bad in ([], [1.5], [True], None, [-1]):
        with pytest.raises(InvalidInputError, match="'shape'"):
            element_count(bad, "t")
