"""Artifact trust: verify ``signature.json`` before anything in an artifact is deserialised.

The signed message, the signed files and the ``signature.json`` format are the artifact
contract's (``src/artifact_contract/signature.py``; docs/artifact.md, "Signing"). Serving holds
a *keyring* of ``key_id -> secret`` (several keys, so a new key can be rolled out before the
old one is retired) from ``ARTIFACT_SIGNING_KEYS`` (``id:secret,id2:secret2``) and/or
``ARTIFACT_SIGNING_KEYS_FILE`` (one ``id:secret`` a line), parsed by the contract's key rules.

Policy (:meth:`Keyring.verify`):

* a signature that is present is always checked; a wrong or tampered one is refused, even
  with ``ALLOW_UNSIGNED=true`` (a key it names that is not configured is refused too, unless
  unsigned artifacts are allowed, in which case it is loaded as *unverified* with a warning);
* a missing ``signature.json`` is refused unless ``ALLOW_UNSIGNED=true`` (local work only);
* the metadata bytes that were verified are returned, so the loader parses exactly those
  bytes (no window in which the file could be swapped). The metadata records the sha256 of
  ``model.joblib``/``model.onnx``, which the loader checks against the bytes it deserialises:
  the chain of trust runs signature -> metadata -> model bytes.

Secrets never leave this module: the keyring's ``repr`` lists key ids only, and no message
contains a secret or a signature value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.artifact_contract.errors import DocumentError
from src.artifact_contract.keys import shown_key_id
from src.artifact_contract.layout import METADATA_FILE, SIGNATURE_FILE
from src.artifact_contract.signature import (
    MAX_SIGNATURE_BYTES,
    SIGNED_FILES,
    SignatureDocument,
    parse_signature_document,
    signature_matches,
    signature_message,
)
from src.serve.errors import InvalidArtifactError, SignatureInvalidError, UnsignedArtifactError


@dataclass(frozen=True)
class Verification:
    """What :meth:`Keyring.verify` established about one artifact directory."""

    metadata_bytes: bytes
    key_id: str | None  # the key that verified the signature; None when not verified
    signed: bool  # a signature.json was present
    warning: str | None = None  # set when an unverified artifact was accepted (ALLOW_UNSIGNED)

    @property
    def verified(self) -> bool:
        """True when a configured key verified the signature."""
        return self.key_id is not None


class Keyring:
    """Signing keys by id plus the unsigned-artifact policy. Immutable; secrets never shown."""

    def __init__(
        self, keys: Mapping[str, bytes] | Iterable[tuple[str, bytes]], *, allow_unsigned: bool
    ) -> None:
        items = keys.items() if isinstance(keys, Mapping) else keys
        self._keys: dict[str, bytes] = {}
        for key_id, secret in items:
            if key_id in self._keys and not hmac.compare_digest(self._keys[key_id], secret):
                raise ValueError(f"signing key id {shown_key_id(key_id)!r} is configured twice")
            self._keys[key_id] = secret
        self.allow_unsigned = allow_unsigned

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Configured key ids (safe to log)."""
        return tuple(self._keys)

    def __repr__(self) -> str:
        return f"Keyring(key_ids={list(self._keys)!r}, allow_unsigned={self.allow_unsigned})"

    def verify(self, directory: Path, version: str) -> Verification:
        """Check ``directory``'s signature under this keyring's policy (see the module doc).

        Raises :class:`UnsignedArtifactError`, :class:`SignatureInvalidError` or
        :class:`InvalidArtifactError` (metadata.json missing/unreadable). Reads files only;
        nothing is deserialised except the small ``signature.json`` JSON document.
        """
        files = _read_signed_files(directory, version)
        document = _read_signature(directory, version)
        if document is None:
            if not self.allow_unsigned:
                raise UnsignedArtifactError(
                    f"version {version} is not signed (no {SIGNATURE_FILE}); configure training "
                    "with ARTIFACT_SIGNING_KEY and this server with ARTIFACT_SIGNING_KEYS, or set "
                    "ALLOW_UNSIGNED=true for local work"
                )
            return Verification(
                files[METADATA_FILE],
                None,
                signed=False,
                warning=f"version {version} is unsigned (accepted: ALLOW_UNSIGNED=true)",
            )
        key_id, signature = document
        secret = self._keys.get(key_id)
        if secret is None:
            reason = (
                f"version {version} is signed with key id {shown_key_id(key_id)!r}, which is not "
                "configured here (ARTIFACT_SIGNING_KEYS / ARTIFACT_SIGNING_KEYS_FILE"
                + (
                    f"; configured: {', '.join(map(shown_key_id, self._keys))})"
                    if self._keys
                    else ")"
                )
            )
            if not self.allow_unsigned:
                raise SignatureInvalidError(reason)
            return Verification(
                files[METADATA_FILE],
                None,
                signed=True,
                warning=reason + "; accepted unverified (ALLOW_UNSIGNED=true)",
            )
        if not signature_matches(secret, message_for(files), signature):
            raise SignatureInvalidError(
                f"version {version}: the signature does not match its files under key id "
                f"{shown_key_id(key_id)!r} (files changed after signing, or signed with another "
                "secret)"
            )
        return Verification(files[METADATA_FILE], key_id, signed=True)


def message_for(files: Mapping[str, bytes | None]) -> bytes:
    """The signed message for file contents read into memory (``None``: file absent)."""
    return signature_message(
        {
            name: None if data is None else hashlib.sha256(data).hexdigest()
            for name, data in files.items()
        }
    )


def _read_signed_files(directory: Path, version: str) -> dict[str, bytes | None]:
    files: dict[str, bytes | None] = {}
    for name in SIGNED_FILES:
        try:
            files[name] = (directory / name).read_bytes()
        except FileNotFoundError:
            files[name] = None
        except OSError:
            raise InvalidArtifactError(f"version {version}: {name} is unreadable") from None
    if files[METADATA_FILE] is None:
        raise InvalidArtifactError(f"version {version}: metadata.json is missing")
    return files


def _read_signature(directory: Path, version: str) -> SignatureDocument | None:
    """The parsed signature.json, None when absent; unreadable or malformed -> refused."""
    try:
        with (directory / SIGNATURE_FILE).open("rb") as handle:
            raw = handle.read(MAX_SIGNATURE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError:
        raise SignatureInvalidError(f"version {version}: {SIGNATURE_FILE} is unreadable") from None
    try:
        return parse_signature_document(raw)
    except DocumentError as exc:
        raise SignatureInvalidError(f"version {version}: {exc}") from None


def check_signing_metadata(
    metadata_signing: Mapping[str, Any] | None, result: Verification, version: str
) -> None:
    """The (now trusted) metadata must agree with the signature that covered it.

    A version whose metadata says it was signed but whose ``signature.json`` is gone is refused
    even with ``ALLOW_UNSIGNED=true``: that is a damaged copy (or a stripped signature).
    """
    claimed = (metadata_signing or {}).get("key_id")
    if result.verified:
        if claimed != result.key_id:
            raise SignatureInvalidError(
                f"version {version}: metadata signing.key_id {shown_key_id(claimed)!r} does not "
                f"match the key that signed it ({shown_key_id(result.key_id)!r})"
            )
        return
    if claimed is not None and not result.signed:
        raise SignatureInvalidError(
            f"version {version}: metadata says it is signed with key id {shown_key_id(claimed)!r} "
            f"but {SIGNATURE_FILE} is missing"
        )
