"""The signing-key syntax, the one character rule and the key-file reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.artifact_contract.errors import KeyFileError, KeyFormatError
from src.artifact_contract.keys import (
    SigningKey,
    is_printable_token,
    parse_signing_key,
    read_key_file,
    read_signing_keys,
    shown_key_id,
)


def test_the_secret_is_everything_after_the_first_colon() -> None:
    key = parse_signing_key("  k1:s3cret:with:colons\n")
    assert key == SigningKey("k1", b"s3cret:with:colons")
    assert key == ("k1", b"s3cret:with:colons")
    assert parse_signing_key("k2:sécret").secret == "sécret".encode()  # pragma: allowlist secret


@pytest.mark.parametrize("text", ["no-colon", "fake-id:", ":fake-secret-value", "  ", ""])
def test_malformed_keys_are_refused(text: str) -> None:
    with pytest.raises(KeyFormatError, match=r"must look like <key_id>:<secret>"):
        parse_signing_key(text)


@pytest.mark.parametrize(
    "text",
    [
        "fake-id:fake secret value",
        "fake-id:fake\tsecret-value",
        "fake id:fake-secret-value",
        "fake-id:fake-secret\x00value",
        "fake-id:fake-secret\x1bvalue",
        "fake-id:fake-secret,value",
        "fake,id:fake-secret-value",
        "fake-id:fake-secret\u2028value",
    ],
    ids=["space", "tab", "space-in-id", "nul", "escape", "comma", "comma-in-id", "line-sep"],
)
def test_whitespace_control_characters_and_commas_are_refused_without_showing_the_key(
    text: str,
) -> None:
    with pytest.raises(KeyFormatError, match="must not contain whitespace") as info:
        parse_signing_key(text)
    assert "fake" not in str(info.value)


def test_repr_never_shows_the_secret() -> None:
    key = parse_signing_key("k1:fake-secret-value")
    assert "fake-secret-value" not in repr(key)
    assert "k1" in repr(key)


def test_printable_tokens() -> None:
    assert is_printable_token("abc-DEF_123.~")
    assert not is_printable_token("")
    assert not is_printable_token("a b")
    assert not is_printable_token("a\x7fb")


def test_key_file_lines_skip_blanks_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# rotated 2026-01\n\n  k1:one  \n#k0:old\nk2:two\n")
    assert read_key_file(path) == [(3, "k1:one"), (5, "k2:two")]
    assert read_signing_keys(path) == [SigningKey("k1", b"one"), SigningKey("k2", b"two")]


def test_a_bad_key_line_is_named_by_number_not_content(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("k1:one\nk2:fake secret\n")
    with pytest.raises(KeyFormatError, match=r"line 2 of .*keys: must not contain") as info:
        read_signing_keys(path)
    assert "fake" not in str(info.value)


def test_unreadable_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"file .*absent does not exist"):
        read_key_file(tmp_path / "absent")
    with pytest.raises(KeyFileError, match="is a directory, not a key file"):
        read_key_file(tmp_path)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(KeyFileError, match=r"cannot read .*binary: unreadable"):
        read_key_file(binary)


def test_shown_key_ids_are_bounded_and_escaped() -> None:
    assert shown_key_id("prod-2026") == "prod-2026"
    assert shown_key_id("x" * 500) == "x" * 64
    assert shown_key_id("a\x1b[31mb") == "a\\x1b[31mb"
    assert shown_key_id(None) == "None"
