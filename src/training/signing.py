"""HMAC-SHA256 artifact signatures (docs/artifact.md, "Signing").

The key comes from ``ARTIFACT_SIGNING_KEY`` (``<key_id>:<secret>``) or from the file named by
``ARTIFACT_SIGNING_KEY_FILE`` (same format). The secret is the UTF-8 bytes after the first
colon. Without a key, artifacts are published unsigned (``signing: null``) with a warning.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from src.training.errors import ConfigError

KEY_ENV = "ARTIFACT_SIGNING_KEY"
KEY_FILE_ENV = "ARTIFACT_SIGNING_KEY_FILE"
ALGORITHM = "HMAC-SHA256"
SIGNATURE_HEADER = "mlops-artifact-v1"
SIGNED_FILES = ("metadata.json", "model.joblib", "model.onnx")


@dataclass(frozen=True)
class SigningKey:
    """A key id and its secret bytes."""

    key_id: str
    secret: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"SigningKey(key_id={self.key_id!r})"


def parse_key(text: str, origin: str) -> SigningKey:
    """Parse ``<key_id>:<secret>``; `ConfigError` names ``origin`` when malformed."""
    key_id, sep, secret = text.strip().partition(":")
    if not sep or not key_id or not secret:
        raise ConfigError(origin, "must look like <key_id>:<secret> (both non-empty)")
    return SigningKey(key_id, secret.encode("utf-8"))


def load_signing_key(environ: Mapping[str, str] | None = None) -> SigningKey | None:
    """The configured signing key, or None when neither variable is set."""
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV):
        return parse_key(env[KEY_ENV], KEY_ENV)
    if env.get(KEY_FILE_ENV):
        path = Path(env[KEY_FILE_ENV])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(KEY_FILE_ENV, f"cannot read {path}: {exc.strerror or exc}") from None
        return parse_key(text, KEY_FILE_ENV)
    return None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def signature_message(directory: Path) -> bytes:
    """The signed text: header, then ``<file> <sha256>`` per present file, joined by newlines."""
    lines = [SIGNATURE_HEADER]
    for name in SIGNED_FILES:
        path = directory / name
        if path.exists():
            lines.append(f"{name} {_sha256_file(path)}")
    return "\n".join(lines).encode("utf-8")


def signature_document(directory: Path, key: SigningKey) -> bytes:
    """The bytes of ``signature.json`` for the files in ``directory``."""
    signature = hmac.new(key.secret, signature_message(directory), hashlib.sha256).hexdigest()
    document = {"algorithm": ALGORITHM, "key_id": key.key_id, "signature": signature}
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def verify_signature(directory: Path, keys: Mapping[str, bytes]) -> bool:
    """True when ``signature.json`` matches the files under one of ``keys`` (id -> secret)."""
    document = json.loads((directory / "signature.json").read_text(encoding="utf-8"))
    secret = keys.get(document.get("key_id", ""))
    if secret is None or document.get("algorithm") != ALGORITHM:
        return False
    expected = hmac.new(secret, signature_message(directory), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, str(document.get("signature", "")))
