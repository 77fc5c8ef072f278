"""The local signing key: created once, private, shared by training and serving."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from src.artifact_contract.errors import KeyFileError, KeyFormatError
from src.artifact_contract.local_key import (
    LOCAL_FALLBACK_ENV,
    LOCAL_KEY_PATH,
    check_private,
    ensure_local_key,
    local_fallback_enabled,
    read_local_key,
)


def test_the_default_path_is_the_compose_secret_under_the_working_directory() -> None:
    assert Path("secrets/artifact_signing_key.txt") == LOCAL_KEY_PATH


def test_created_once_owner_only_under_any_umask(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "artifact_signing_key.txt"
    old = os.umask(0)  # the most permissive umask: modes must not follow it
    try:
        first = ensure_local_key(path)
    finally:
        os.umask(old)
    assert first.created
    assert first.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert first.key.key_id.startswith("local-")
    assert len(first.key.secret) >= 40
    again = ensure_local_key(path)
    assert not again.created
    assert again.key == first.key
    assert read_local_key(path) == first.key
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_a_missing_file_is_no_key(tmp_path: Path) -> None:
    assert read_local_key(tmp_path / "secrets" / "absent.txt") is None


def test_create_secrets_layout_is_private_enough(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o700)
    path = folder / "artifact_signing_key.txt"
    path.write_text("local-ab:fake-secret-value\n")  # pragma: allowlist secret
    path.chmod(0o644)
    folder.chmod(0o700)
    assert read_local_key(path) == ("local-ab", b"fake-secret-value")
    folder.chmod(0o755)  # now anyone can read the key
    with pytest.raises(KeyFileError, match=r"readable by other users; run: chmod 600"):
        check_private(path)


def test_a_file_others_can_write_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    path.write_text("local-ab:fake-secret-value\n")  # pragma: allowlist secret
    path.chmod(0o622)
    with pytest.raises(KeyFileError, match="writable by other users") as info:
        read_local_key(path)
    assert "fake-secret-value" not in str(info.value)


def test_exactly_one_key_line(tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    path.write_text("a:fake-secret-1\nb:fake-secret-2\n")  # pragma: allowlist secret
    path.chmod(0o600)
    with pytest.raises(KeyFormatError, match="exactly one"):
        read_local_key(path)


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(None, True), ("", True), ("true", True), ("1", True), ("false", False), ("Off", False)],
)
def test_the_fallback_setting(value: str | None, enabled: bool) -> None:
    env = {} if value is None else {LOCAL_FALLBACK_ENV: value}
    assert local_fallback_enabled(env) is enabled


def test_a_misspelt_fallback_setting_is_refused() -> None:
    with pytest.raises(KeyFormatError, match="must be true or false"):
        local_fallback_enabled({LOCAL_FALLBACK_ENV: "production"})
