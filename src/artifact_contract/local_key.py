"""The local signing key: created once by training, trusted by serving when nothing is configured.

A fresh checkout has no signing key. Rather than publishing unsigned models that a default
service refuses, training creates one random key in ``secrets/artifact_signing_key.txt``
(relative to the directory the commands run from; git-ignored) and signs with it; the service,
when no signing key is configured, verifies with the same file. Explicit keys always win, and
``ARTIFACT_SIGNING_LOCAL_FALLBACK=false`` (compose, Kubernetes) turns the fallback off.

It is the same file ``deploy/docker/create_secrets.py`` writes for compose, so a model trained
on the host verifies in the container too. That script makes it 0644 inside a 0700 folder (the
container user must read it); this module creates it 0600. Both count as private: a key file
is trusted only when no other user can write it, and can read it only through an owner-only
folder.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from src.artifact_contract.errors import KeyFileError, KeyFormatError
from src.artifact_contract.keys import SigningKey, parse_signing_key, read_signing_keys

LOCAL_KEY_PATH = Path("secrets") / "artifact_signing_key.txt"
LOCAL_FALLBACK_ENV = "ARTIFACT_SIGNING_LOCAL_FALLBACK"
LOCAL_KEY_ID_PREFIX = "local-"
FILE_MODE = 0o600
DIR_MODE = 0o700
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})
_TRUE_WORDS = frozenset({"", "1", "true", "yes", "on"})


class LocalKey(NamedTuple):
    """The local key, where it lives and whether this call created it."""

    key: SigningKey
    path: Path
    created: bool


def local_fallback_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """``ARTIFACT_SIGNING_LOCAL_FALLBACK`` as a bool (unset: true); other words raise."""
    env = os.environ if environ is None else environ
    word = env.get(LOCAL_FALLBACK_ENV, "").strip().lower()
    if word in _FALSE_WORDS:
        return False
    if word in _TRUE_WORDS:
        return True
    raise KeyFormatError(f"{LOCAL_FALLBACK_ENV} must be true or false")


def check_private(path: Path) -> None:
    """`KeyFileError` unless only its owner can change ``path`` and only they can read it.

    Readable by others is accepted inside a folder only its owner can enter (how
    ``create_secrets.py`` leaves the compose secret).
    """
    mode = path.stat().st_mode
    if os.name == "posix" and path.stat().st_uid != os.getuid():
        raise KeyFileError(f"{path} belongs to another user; not trusted as the local key")
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise KeyFileError(f"{path} is writable by other users; run: chmod 600 {path}")
    if mode & (stat.S_IRGRP | stat.S_IROTH) and path.parent.stat().st_mode & 0o077:
        raise KeyFileError(
            f"{path} is readable by other users; run: chmod 600 {path} (or chmod 700 {path.parent})"
        )


def read_local_key(path: Path = LOCAL_KEY_PATH) -> SigningKey | None:
    """The key in the local key file, None when the file does not exist.

    `KeyFileError` / `KeyFormatError` (never showing the secret) when it exists but is not a
    private file holding exactly one ``<key_id>:<secret>`` line.
    """
    if not path.is_file():
        if path.exists():
            raise KeyFileError(f"{path} is not a regular file")
        return None
    check_private(path)
    keys = read_signing_keys(path)
    if len(keys) != 1:
        raise KeyFormatError(f"{path} must hold exactly one <key_id>:<secret> line")
    return keys[0]


def new_local_key_line() -> str:
    """A fresh random ``local-<hex>:<secret>`` line (what the key file holds)."""
    return f"{LOCAL_KEY_ID_PREFIX}{secrets.token_hex(4)}:{secrets.token_urlsafe(32)}"


def ensure_local_key(path: Path = LOCAL_KEY_PATH) -> LocalKey:
    """The local key, creating the file (0600, folder 0700 if new) when it does not exist.

    Creation is atomic: the key is written to a private temporary file and linked into place,
    so two runs starting together end up with the same key and never read a half-written file.
    """
    existing = read_local_key(path)
    if existing is not None:
        return LocalKey(existing, path, created=False)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=DIR_MODE, exist_ok=True)
    line = new_local_key_line()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # open()'s mode is reduced by the umask; this is not
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(line + "\n")
        try:
            os.link(tmp, path)
            created = True
        except FileExistsError:
            created = False
    finally:
        tmp.unlink(missing_ok=True)
    if not created:
        key = read_local_key(path)
        if key is None:
            raise KeyFileError(f"{path} disappeared while it was being created")
        return LocalKey(key, path, created=False)
    return LocalKey(parse_signing_key(line), path, created=True)
