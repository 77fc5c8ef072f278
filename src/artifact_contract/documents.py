"""The artifact's JSON files (``metadata.json``, ``signature.json``): each one JSON object."""

from __future__ import annotations

import json
from typing import Any

from src.artifact_contract.errors import DocumentError


def parse_json_object(raw: bytes, name: str, *, max_bytes: int | None = None) -> dict[str, Any]:
    """The JSON object in ``raw`` (the bytes of the file ``name``); `DocumentError` naming the
    file when it is larger than ``max_bytes``, not JSON, or not an object."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise DocumentError(f"{name} is larger than {max_bytes} bytes")
    try:
        document = json.loads(raw)
    except ValueError:
        raise DocumentError(f"{name} is not valid JSON") from None
    if not isinstance(document, dict):
        raise DocumentError(f"{name} is not a JSON object")
    return document
