"""Artifact trust: verify ``signature.json`` before anything in an artifact is deserialised.

Training signs each published version with HMAC-SHA256 over the message documented in
docs/artifact.md ("Signing"): the header ``mlops-artifact-v1`` followed by one
``<file> <sha256 hex>`` line for ``metadata.json``, ``model.joblib`` and (when present)
``model.onnx``. Serving holds a *keyring* of ``key_id -> secret`` (several keys, so a new key
can be rolled out before the old one is retired) from ``ARTIFACT_SIGNING_KEYS``
(``id:secret,id2:secret2``) and/or ``ARTIFACT_SIGNING_KEYS_FILE`` (one ``id:secret`` a line).

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
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.serve.errors import InvalidArtifactError, SignatureInvalidError, UnsignedArtifactError

ALGORITHM = "HMAC-SHA256"
SIGNATURE_FILE = "signature.json"
SIGNATURE_HEADER = "mlops-artifact-v1"
SIGNED_FILES = ("metadata.json", "model.joblib", "model.onnx")
MAX_SIGNATURE_BYTES = 4096
MAX_SHOWN_KEY_ID = 64
HEX_SHA256_CHARS = 64


def parse_signing_key(text: str) -> tuple[str, bytes]:
    """``<key_id>:<secret>`` -> (key id, secret bytes); ``ValueError`` never shows the secret.

    Same format as training's ``ARTIFACT_SIGNING_KEY``: the secret is the UTF-8 text after the
    first colon (it may itself contain colons).
    """
    key_id, sep, secret = text.strip().partition(":")
    if not sep or not key_id or not secret:
        raise ValueError("each signing key must look like <key_id>:<secret> (both non-empty)")
    if any(ch.isspace() or not ch.isprintable() for ch in key_id + secret):
        raise ValueError("signing key ids and secrets must not contain whitespace or control chars")
    return key_id, secret.encode("utf-8")


def _shown_id(key_id: object) -> str:
    text = str(key_id)[:MAX_SHOWN_KEY_ID]
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


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
                raise ValueError(f"signing key id {_shown_id(key_id)!r} is configured twice")
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
                files["metadata.json"],
                None,
                signed=False,
                warning=f"version {version} is unsigned (accepted: ALLOW_UNSIGNED=true)",
            )
        key_id, signature = document
        secret = self._keys.get(key_id)
        if secret is None:
            reason = (
                f"version {version} is signed with key id {_shown_id(key_id)!r}, which is not "
                "configured here (ARTIFACT_SIGNING_KEYS / ARTIFACT_SIGNING_KEYS_FILE"
                + (f"; configured: {', '.join(map(_shown_id, self._keys))})" if self._keys else ")")
            )
            if not self.allow_unsigned:
                raise SignatureInvalidError(reason)
            return Verification(
                files["metadata.json"],
                None,
                signed=True,
                warning=reason + "; accepted unverified (ALLOW_UNSIGNED=true)",
            )
        expected = hmac.new(secret, signature_message(files), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
            raise SignatureInvalidError(
                f"version {version}: the signature does not match its files under key id "
                f"{_shown_id(key_id)!r} (files changed after signing, or signed with another "
                "secret)"
            )
        return Verification(files["metadata.json"], key_id, signed=True)


def signature_message(files: Mapping[str, bytes | None]) -> bytes:
    """The signed text for the given file contents (docs/artifact.md, "Signing")."""
    lines = [SIGNATURE_HEADER]
    for name in SIGNED_FILES:
        data = files.get(name)
        if data is not None:
            lines.append(f"{name} {hashlib.sha256(data).hexdigest()}")
    return "\n".join(lines).encode("utf-8")


def _read_signed_files(directory: Path, version: str) -> dict[str, bytes | None]:
    files: dict[str, bytes | None] = {}
    for name in SIGNED_FILES:
        try:
            files[name] = (directory / name).read_bytes()
        except FileNotFoundError:
            files[name] = None
        except OSError:
            raise InvalidArtifactError(f"version {version}: {name} is unreadable") from None
    if files["metadata.json"] is None:
        raise InvalidArtifactError(f"version {version}: metadata.json is missing")
    return files


def _read_signature(directory: Path, version: str) -> tuple[str, str] | None:
    """(key id, hex signature) from signature.json, None when absent; malformed -> refused."""
    path = directory / SIGNATURE_FILE
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SIGNATURE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError:
        raise SignatureInvalidError(f"version {version}: {SIGNATURE_FILE} is unreadable") from None
    try:
        if len(raw) > MAX_SIGNATURE_BYTES:
            raise ValueError("too large")
        document: Any = json.loads(raw)
    except ValueError:
        raise SignatureInvalidError(
            f"version {version}: {SIGNATURE_FILE} is not a valid signature document"
        ) from None
    if not isinstance(document, dict):
        raise SignatureInvalidError(f"version {version}: {SIGNATURE_FILE} is not a JSON object")
    algorithm = document.get("algorithm")
    key_id = document.get("key_id")
    signature = document.get("signature")
    if algorithm != ALGORITHM:
        raise SignatureInvalidError(
            f"version {version}: signature algorithm {_shown_id(algorithm)!r} is not supported "
            f"(expected {ALGORITHM})"
        )
    if not isinstance(key_id, str) or not key_id:
        raise SignatureInvalidError(f"version {version}: {SIGNATURE_FILE} has no key_id")
    if (
        not isinstance(signature, str)
        or len(signature) != HEX_SHA256_CHARS
        or not all(c in "0123456789abcdef" for c in signature)
    ):
        raise SignatureInvalidError(
            f"version {version}: {SIGNATURE_FILE} holds no valid HMAC-SHA256 hex signature"
        )
    return key_id, signature


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
                f"version {version}: metadata signing.key_id {_shown_id(claimed)!r} does not "
                f"match the key that signed it ({_shown_id(result.key_id)!r})"
            )
        return
    if claimed is not None and not result.signed:
        raise SignatureInvalidError(
            f"version {version}: metadata says it is signed with key id {_shown_id(claimed)!r} "
            f"but {SIGNATURE_FILE} is missing"
        )
