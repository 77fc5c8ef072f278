"""deploy/docker/create_secrets.py: one command creates every compose secret file, with modes
the containers can read whatever the umask, and never replaces an existing secret."""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "docker" / "create_secrets.py"


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("create_secrets", SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def strict_umask() -> Iterator[None]:
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_creates_every_compose_secret_readable_by_container_users_under_umask_077(
    tmp_path: Path, strict_umask: None
) -> None:
    created = _load().create_secrets(tmp_path / "secrets")
    compose_files = {
        Path(secret["file"]).name
        for secret in yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["secrets"].values()
    }
    assert set(created) == compose_files
    assert all(created.values())
    assert _mode(tmp_path / "secrets") == 0o700
    for name in compose_files:
        path = tmp_path / "secrets" / name
        assert _mode(path) == 0o644, name
        assert len(path.read_text().strip()) >= 32, name
    key_id, _, secret = (
        (tmp_path / "secrets" / "artifact_signing_key.txt").read_text().partition(":")
    )
    assert key_id.startswith("local-")
    assert len(secret.strip()) >= 32


def test_keeps_existing_secrets_and_fixes_their_mode(tmp_path: Path, strict_umask: None) -> None:
    directory = tmp_path / "secrets"
    directory.mkdir()
    existing = directory / "artifact_signing_key.txt"
    existing.write_text("mine:do-not-replace\n")
    existing.chmod(0o600)
    first = _load().create_secrets(directory)
    assert first["artifact_signing_key.txt"] is False
    assert existing.read_text() == "mine:do-not-replace\n"
    assert _mode(existing) == 0o644
    api_key = (directory / "api_keys.txt").read_text()
    second = _load().create_secrets(directory)
    assert not any(second.values())
    assert (directory / "api_keys.txt").read_text() == api_key


def test_prints_paths_and_modes_but_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "secrets"
    assert _load().main(["--dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "created (-rw-r--r--)" in out
    for path in directory.iterdir():
        for part in path.read_text().strip().split(":"):
            assert part not in out
