"""Check one published version the way serving will, without deserialising anything.

Used by the registry tool before it points an alias at a version: the signature over the
signed files (the keys read as serving reads them: ``ARTIFACT_SIGNING_KEYS`` and
``ARTIFACT_SIGNING_KEYS_FILE``, unsigned versions accepted only with ``ALLOW_UNSIGNED=true``),
then the sha256 the metadata records for ``model.joblib`` and ``model.onnx``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.artifact_contract.documents import parse_json_object
from src.artifact_contract.errors import ContractError
from src.artifact_contract.keys import SigningKey, parse_signing_key, read_signing_keys
from src.artifact_contract.layout import METADATA_FILE, MODEL_FILE, ONNX_FILE, SIGNATURE_FILE
from src.artifact_contract.signature import (
    MAX_SIGNATURE_BYTES,
    SIGNED_FILES,
    parse_signature_document,
    signature_matches,
    signature_message,
)

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


class VerificationError(ContractError):
    """A version that serving would refuse (the message says why; never a secret)."""


@dataclass(frozen=True)
class VerifiedVersion:
    """A version that passed: its metadata and how it was trusted."""

    metadata: dict[str, Any]
    key_id: str | None  # None: unsigned, accepted because unsigned versions are allowed


def keys_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """Signing keys from ``ARTIFACT_SIGNING_KEYS`` and ``ARTIFACT_SIGNING_KEYS_FILE``."""
    env = os.environ if environ is None else environ
    keys: list[SigningKey] = [
        parse_signing_key(part)
        for part in env.get("ARTIFACT_SIGNING_KEYS", "").split(",")
        if part.strip()
    ]
    if env.get("ARTIFACT_SIGNING_KEYS_FILE"):
        keys.extend(read_signing_keys(Path(env["ARTIFACT_SIGNING_KEYS_FILE"])))
    return {key.key_id: key.secret for key in keys}


def unsigned_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """``ALLOW_UNSIGNED`` as serving reads it."""
    env = os.environ if environ is None else environ
    return env.get("ALLOW_UNSIGNED", "").strip().lower() in TRUE_WORDS


def _read(directory: Path, name: str) -> bytes | None:
    try:
        return (directory / name).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VerificationError(f"{name} is unreadable ({exc.strerror})") from None


def verify_version(
    directory: Path, keys: Mapping[str, bytes], *, allow_unsigned: bool = False
) -> VerifiedVersion:
    """Verify ``directory`` (one version) or raise :class:`VerificationError`."""
    if not directory.is_dir():
        raise VerificationError(f"version {directory.name} does not exist")
    files = {name: _read(directory, name) for name in SIGNED_FILES}
    metadata_bytes = files[METADATA_FILE]
    if metadata_bytes is None:
        raise VerificationError(f"{METADATA_FILE} is missing")
    digests = {n: None if b is None else hashlib.sha256(b).hexdigest() for n, b in files.items()}
    key_id = _check_signature(directory, digests, keys, allow_unsigned)
    metadata = parse_json_object(metadata_bytes, METADATA_FILE)
    if metadata.get("model_version") != directory.name:
        raise VerificationError(f"{METADATA_FILE} names another version")
    claimed_key = (metadata.get("signing") or {}).get("key_id")
    if key_id is not None and claimed_key != key_id:
        raise VerificationError("metadata signing.key_id does not match the signing key")
    recorded = (metadata.get("model_file") or {}).get("sha256")
    if files[MODEL_FILE] is None or recorded != digests[MODEL_FILE]:
        raise VerificationError(f"{MODEL_FILE} is missing or its sha256 does not match metadata")
    onnx_recorded = (metadata.get("onnx") or {}).get("sha256")
    if onnx_recorded is not None and onnx_recorded != digests[ONNX_FILE]:
        raise VerificationError(f"{ONNX_FILE} is missing or its sha256 does not match metadata")
    return VerifiedVersion(metadata, key_id)


def _check_signature(
    directory: Path,
    digests: Mapping[str, str | None],
    keys: Mapping[str, bytes],
    allow_unsigned: bool,
) -> str | None:
    raw = _read(directory, SIGNATURE_FILE)
    if raw is None:
        if (directory / SIGNATURE_FILE).exists() or not allow_unsigned:
            raise VerificationError(f"not signed (no {SIGNATURE_FILE}; ALLOW_UNSIGNED is off)")
        return None
    if len(raw) > MAX_SIGNATURE_BYTES:
        raise VerificationError(f"{SIGNATURE_FILE} is too large")
    key_id, signature = parse_signature_document(raw)
    secret = keys.get(key_id)
    if secret is None:
        raise VerificationError(
            "signed with a key id that is not configured (ARTIFACT_SIGNING_KEYS / "
            "ARTIFACT_SIGNING_KEYS_FILE)"
        )
    if not signature_matches(secret, signature_message(digests), signature):
        raise VerificationError("the signature does not match its files")
    return key_id
