"""Tensors of the Open Inference Protocol: datatypes, JSON ``data`` and binary data.

Binary tensor data (Triton's ``binary_tensor_data`` extension) is little-endian, row-major,
without padding; a ``BYTES`` element is a 4-byte little-endian length followed by its bytes.
Every malformed tensor raises :class:`~src.serve.errors.InvalidInputError` (400 on the
protocol's routes).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from src.serve.errors import InvalidInputError

BYTES = "BYTES"
BOOL = "BOOL"
#: Fixed-size datatypes and their little-endian numpy dtypes.
NUMPY_DTYPES: dict[str, str] = {
    BOOL: "|b1",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
NUMERIC_DATATYPES = frozenset(NUMPY_DTYPES) - {BOOL}
DATATYPES = frozenset(NUMPY_DTYPES) | {BYTES}
_LENGTH = struct.Struct("<I")


def element_count(shape: Any, where: str) -> int:
    """The number of elements of a tensor of ``shape`` (a list of non-negative integers)."""
    if (
        not isinstance(shape, list)
        or not shape
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise InvalidInputError(
            f"{where}: 'shape' must be a non-empty list of non-negative integers."
        )
    return math.prod(shape)


def _flatten(data: Any) -> list[Any]:
    """JSON tensor data, nested or flat, as a flat list (row-major)."""
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _check_json_element(datatype: str, value: Any, where: str) -> None:
    if datatype == BYTES:
        ok = isinstance(value, str)
    elif datatype == BOOL:
        ok = isinstance(value, bool)
    elif datatype.startswith(("INT", "UINT")):
        ok = type(value) is int
    else:
        ok = type(value) in (int, float)
    if not ok:
        raise InvalidInputError(
            f"{where}: element {value!r:.40} is not a {datatype} value."
            if isinstance(value, int | float | bool | str | None)
            else f"{where}: an element is not a {datatype} value."
        )


def values_from_json(datatype: str, data: Any, count: int, where: str) -> list[Any]:
    """The elements of a tensor given as JSON ``data``: ``count`` values of ``datatype``
    (BYTES elements are strings)."""
    flat = _flatten(data)
    if len(flat) != count:
        raise InvalidInputError(
            f"{where}: 'data' holds {len(flat)} elements; its shape needs {count}."
        )
    kinds = set(map(type, flat))
    expected = {
        BYTES: {str},
        BOOL: {bool},
    }.get(datatype, {int} if datatype.startswith(("INT", "UINT")) else {int, float})
    if not kinds <= expected:
        for value in flat:
            _check_json_element(datatype, value, where)
    return flat


def values_from_binary(datatype: str, raw: bytes, count: int, where: str) -> list[Any]:
    """The elements of a tensor given as binary data (BYTES elements decoded as UTF-8)."""
    if datatype == BYTES:
        return _bytes_elements(raw, count, where)
    dtype = np.dtype(NUMPY_DTYPES[datatype])
    if len(raw) != count * dtype.itemsize:
        raise InvalidInputError(
            f"{where}: {len(raw)} bytes of binary data; {count} {datatype} elements take "
            f"{count * dtype.itemsize}."
        )
    return np.frombuffer(raw, dtype=dtype).tolist()


def _bytes_elements(raw: bytes, count: int, where: str) -> list[Any]:
    values = []
    offset = 0
    end = len(raw)
    for _ in range(count):
        if offset + 4 > end:
            raise InvalidInputError(f"{where}: the binary data ends inside a BYTES element.")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInputError(f"{where}: the binary data ends inside a BYTES element.")
        try:
            values.append(raw[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInputError(f"{where}: a BYTES element is not UTF-8 text.") from None
        offset += length
    if offset != end:
        raise InvalidInputError(f"{where}: the binary data holds more than {count} BYTES elements.")
    return values


def binary_from_values(datatype: str, values: Sequence[Any]) -> bytes:
    """``values`` as binary tensor data of ``datatype`` (BYTES: UTF-8 text of each value)."""
    if datatype == BYTES:
        parts = []
        for value in values:
            encoded = str(value).encode("utf-8")
            parts.append(_LENGTH.pack(len(encoded)))
            parts.append(encoded)
        return b"".join(parts)
    return np.asarray(values, dtype=NUMPY_DTYPES[datatype]).tobytes()
