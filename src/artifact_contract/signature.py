"""``signature.json``: HMAC-SHA256 over the signed message (docs/artifact.md, "Signing")."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import NamedTuple

from src.artifact_contract.documents import parse_json_object
from src.artifact_contract.errors import SignatureDocumentError
from src.artifact_contract.keys import SigningKey, shown_key_id
from src.artifact_contract.layout import METADATA_FILE, MODEL_FILE, ONNX_FILE, SIGNATURE_FILE

ALGORITHM = "HMAC-SHA256"
SIGNATURE_HEADER = "mlops-artifact-v1"
#: the files a signature covers, in message order (absent optional files are left out)
SIGNED_FILES = (METADATA_FILE, MODEL_FILE, ONNX_FILE)
MAX_SIGNATURE_BYTES = 4096
HEX_SHA256_CHARS = 64
_HEX_DIGITS = frozenset("0123456789abcdef")


class SignatureDocument(NamedTuple):
    """The parts of ``signature.json`` a verifier needs."""

    key_id: str
    signature: str


def signature_message(sha256_by_file: Mapping[str, str | None]) -> bytes:
    """The signed text: the header, then ``<file> <sha256 hex>`` per present signed file."""
    lines = [SIGNATURE_HEADER]
    for name in SIGNED_FILES:
        digest = sha256_by_file.get(name)
        if digest is not None:
            lines.append(f"{name} {digest}")
    return "\n".join(lines).encode("utf-8")


def sign(secret: bytes, message: bytes) -> str:
    """The hex HMAC-SHA256 of ``message`` under ``secret``."""
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signature_matches(secret: bytes, message: bytes, signature: str) -> bool:
    """True when ``signature`` is the HMAC of ``message`` under ``secret`` (constant time)."""
    expected = sign(secret, message).encode("ascii")
    return hmac.compare_digest(expected, signature.encode("ascii", "replace"))


def signing_entry(key: SigningKey) -> dict[str, str]:
    """The metadata ``signing`` entry of an artifact signed with ``key``."""
    return {"algorithm": ALGORITHM, "key_id": key.key_id}


def signature_document(key: SigningKey, message: bytes) -> bytes:
    """The bytes of ``signature.json`` signing ``message`` with ``key``."""
    document = {**signing_entry(key), "signature": sign(key.secret, message)}
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def parse_signature_document(raw: bytes) -> SignatureDocument:
    """Key id and hex signature from ``signature.json`` bytes.

    Raises `DocumentError` (its `SignatureDocumentError` subclass for a JSON object that is no
    valid signature document)."""
    document = parse_json_object(raw, SIGNATURE_FILE, max_bytes=MAX_SIGNATURE_BYTES)
    algorithm = document.get("algorithm")
    key_id = document.get("key_id")
    signature = document.get("signature")
    if algorithm != ALGORITHM:
        raise SignatureDocumentError(
            f"signature algorithm {shown_key_id(algorithm)!r} is not supported "
            f"(expected {ALGORITHM})"
        )
    if not isinstance(key_id, str) or not key_id:
        raise SignatureDocumentError(f"{SIGNATURE_FILE} has no key_id")
    if (
        not isinstance(signature, str)
        or len(signature) != HEX_SHA256_CHARS
        or not _HEX_DIGITS.issuperset(signature)
    ):
        raise SignatureDocumentError(f"{SIGNATURE_FILE} holds no valid {ALGORITHM} hex signature")
    return SignatureDocument(key_id, signature)
