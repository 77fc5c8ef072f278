"""Signing published artifacts with the key from the environment.

The key comes from ``ARTIFACT_SIGNING_KEY`` (``<key_id>:<secret>``) or from the file named by
``ARTIFACT_SIGNING_KEY_FILE`` (one such line; blank lines and ``#`` comments ignored). The key
syntax, the character rule, the file reader and the signature format are the artifact
contract's (``src/artifact_contract``), shared with serving. Without either variable the
local key (``secrets/artifact_signing_key.txt``, created once, see
``src.artifact_contract.local_key``) signs, unless ``ARTIFACT_SIGNING_LOCAL_FALLBACK=false``:
then artifacts are published unsigned (``signing: null``) with a warning.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from src.artifact_contract.errors import ContractError, DocumentError, KeyFormatError
from src.artifact_contract.keys import SigningKey, parse_signing_key, read_signing_keys
from src.artifact_contract.layout import SIGNATURE_FILE
from src.artifact_contract.local_key import (
    LOCAL_FALLBACK_ENV,
    LOCAL_KEY_PATH,
    ensure_local_key,
    local_fallback_enabled,
)
from src.artifact_contract.signature import (
    SIGNED_FILES,
    parse_signature_document,
    signature_document,
    signature_matches,
    signature_message,
)
from src.training.errors import ConfigError

KEY_ENV = "ARTIFACT_SIGNING_KEY"
KEY_FILE_ENV = "ARTIFACT_SIGNING_KEY_FILE"


def _key_from_file(path: Path) -> SigningKey:
    keys = read_signing_keys(path)
    if len(keys) != 1:
        raise KeyFormatError(f"{path} must hold exactly one <key_id>:<secret> line")
    return keys[0]


def load_signing_key(environ: Mapping[str, str] | None = None) -> SigningKey | None:
    """The configured signing key, or None when neither variable is set.

    A malformed key or unreadable file raises `ConfigError` naming the variable.
    """
    env = os.environ if environ is None else environ
    variable = KEY_ENV if env.get(KEY_ENV) else KEY_FILE_ENV if env.get(KEY_FILE_ENV) else None
    try:
        if variable == KEY_ENV:
            return parse_signing_key(env[KEY_ENV])
        if variable == KEY_FILE_ENV:
            return _key_from_file(Path(env[KEY_FILE_ENV]))
    except ContractError as exc:
        raise ConfigError(str(variable), str(exc)) from None
    return None


class SigningChoice(NamedTuple):
    """The key a publish signs with (None: unsigned) and the line that says so (None: silent)."""

    key: SigningKey | None
    message: str | None


def resolve_signing_key(
    environ: Mapping[str, str] | None = None, *, local_path: Path = LOCAL_KEY_PATH
) -> SigningChoice:
    """The configured key; else the local key (created once); else unsigned with a warning.

    The message names the local key file and its key id, never the secret. `ConfigError`
    names the variable or file at fault.
    """
    env = os.environ if environ is None else environ
    key = load_signing_key(env)
    if key is not None:
        return SigningChoice(key, None)
    try:
        if not local_fallback_enabled(env):
            return SigningChoice(
                None,
                f"WARNING: no signing key ({KEY_ENV} or {KEY_FILE_ENV}) and "
                f"{LOCAL_FALLBACK_ENV}=false; publishing unsigned (signing: null)",
            )
        local = ensure_local_key(local_path)
    except ContractError as exc:
        raise ConfigError(f"{LOCAL_FALLBACK_ENV} (local signing key)", str(exc)) from None
    what = "created the local signing key" if local.created else "signing with the local key"
    return SigningChoice(
        local.key,
        f"artifact signing: {what} {local.path} (key id {local.key.key_id}; git-ignored, "
        f"contents not shown; set {KEY_ENV} or {KEY_FILE_ENV} to use your own)",
    )


def check_signing_settings(environ: Mapping[str, str] | None = None) -> None:
    """Validate the signing variables without creating anything (`ConfigError` if wrong)."""
    env = os.environ if environ is None else environ
    if load_signing_key(env) is None:
        try:
            local_fallback_enabled(env)
        except ContractError as exc:
            raise ConfigError(LOCAL_FALLBACK_ENV, str(exc)) from None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def directory_message(directory: Path) -> bytes:
    """The signed message for the files in ``directory``."""
    return signature_message(
        {
            name: _sha256_file(directory / name)
            for name in SIGNED_FILES
            if (directory / name).exists()
        }
    )


def sign_directory(directory: Path, key: SigningKey) -> bytes:
    """The bytes of ``signature.json`` for the files in ``directory``."""
    return signature_document(key, directory_message(directory))


def verify_signature(directory: Path, keys: Mapping[str, bytes]) -> bool:
    """True when ``signature.json`` matches the files under one of ``keys`` (id -> secret)."""
    try:
        document = parse_signature_document((directory / SIGNATURE_FILE).read_bytes())
    except DocumentError:
        return False
    secret = keys.get(document.key_id)
    return secret is not None and signature_matches(
        secret, directory_message(directory), document.signature
    )
