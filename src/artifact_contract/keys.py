"""Signing keys: ``<key_id>:<secret>``, one character rule, one key-file reader.

The secret is the UTF-8 text after the first colon (it may itself hold colons). Key ids and
secrets are printable, without whitespace and without commas: serving lists several keys
comma-separated in one variable, so a key training accepts must survive that list unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from src.artifact_contract.errors import KeyFileError, KeyFormatError

KEY_FORMAT_MESSAGE = "must look like <key_id>:<secret> (both non-empty)"
KEY_CHARACTERS_MESSAGE = "must not contain whitespace, commas or control characters"
MAX_SHOWN_KEY_ID = 64
COMMENT_PREFIX = "#"


class SigningKey(NamedTuple):
    """A key id and its secret bytes (compares equal to the plain ``(id, secret)`` tuple)."""

    key_id: str
    secret: bytes

    def __repr__(self) -> str:
        return f"SigningKey(key_id={shown_key_id(self.key_id)!r})"


def is_printable_token(text: str) -> bool:
    """True for non-empty text without whitespace or control characters."""
    return bool(text) and not any(ch.isspace() or not ch.isprintable() for ch in text)


def parse_signing_key(text: str) -> SigningKey:
    """``<key_id>:<secret>`` -> `SigningKey`; `KeyFormatError` never shows the secret.

    Surrounding whitespace (a trailing newline in a file) is ignored; inside the key the
    character rule applies.
    """
    key_id, sep, secret = text.strip().partition(":")
    if not sep or not key_id or not secret:
        raise KeyFormatError(KEY_FORMAT_MESSAGE)
    if not is_printable_token(key_id + secret) or "," in key_id + secret:
        raise KeyFormatError(KEY_CHARACTERS_MESSAGE)
    return SigningKey(key_id, secret.encode("utf-8"))


def read_key_file(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each key line; blank lines and ``#`` comments are skipped.

    `KeyFileError` says why the file cannot be read (never its content).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFileError(f"file {path} does not exist") from None
    except IsADirectoryError:
        raise KeyFileError(f"{path} is a directory, not a key file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise KeyFileError(f"cannot read {path}: {reason}") from None
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith(COMMENT_PREFIX):
            lines.append((number, line))
    return lines


def read_signing_keys(path: Path) -> list[SigningKey]:
    """Every ``<key_id>:<secret>`` line of a key file; errors name the line, never its text."""
    keys = []
    for number, line in read_key_file(path):
        try:
            keys.append(parse_signing_key(line))
        except KeyFormatError as exc:
            raise KeyFormatError(f"line {number} of {path}: {exc}") from None
    return keys


def shown_key_id(key_id: object) -> str:
    """A key id (or any value claimed to be one) made safe to log: bounded and escaped."""
    text = str(key_id)[:MAX_SHOWN_KEY_ID]
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
