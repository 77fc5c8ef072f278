"""HMAC-SHA256 signatures over the documented message; keys from env or a file."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from src.training.errors import ConfigError
from src.training.signing import (
    KEY_ENV,
    KEY_FILE_ENV,
    SigningKey,
    check_signing_settings,
    directory_message,
    load_signing_key,
    resolve_signing_key,
    verify_signature,
)
from src.training.steps import train_and_evaluate
from tests import artifact_factory
from tests.unit_tests.training.conftest import publish_outcome


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_key_from_env_and_file(tmp_path):
    assert load_signing_key({}) is None
    key = load_signing_key({KEY_ENV: "k1:s3cret:with:colons"})
    assert key == SigningKey("k1", b"s3cret:with:colons")
    assert "s3cret" not in repr(key)
    key_file = tmp_path / "signing.key"
    key_file.write_text("k2:from-file\n")
    assert load_signing_key({KEY_FILE_ENV: str(key_file)}) == SigningKey("k2", b"from-file")
    # the variable wins over the file
    both = {KEY_ENV: "k1:a", KEY_FILE_ENV: str(key_file)}
    assert load_signing_key(both).key_id == "k1"


@pytest.mark.parametrize("value", ["no-colon", ":secret", "id:", "  "])
def test_malformed_keys_name_the_variable(value):
    with pytest.raises(ConfigError, match=f"{KEY_ENV}: must look like <key_id>:<secret>"):
        load_signing_key({KEY_ENV: value})


@pytest.mark.parametrize(
    "value", ["id:fake secret value", "id:fake\tsecret", "id:fake,secret", "fake id:secret"]
)
def test_keys_serving_could_not_use_are_refused_without_showing_them(value):
    with pytest.raises(ConfigError, match=f"{KEY_ENV}: must not contain whitespace") as info:
        load_signing_key({KEY_ENV: value})
    assert "fake" not in str(info.value)


def test_missing_or_unreadable_key_file(tmp_path):
    with pytest.raises(ConfigError, match=f"{KEY_FILE_ENV}: file .*missing.key does not exist"):
        load_signing_key({KEY_FILE_ENV: str(tmp_path / "missing.key")})
    with pytest.raises(ConfigError, match=f"{KEY_FILE_ENV}: .* is a directory"):
        load_signing_key({KEY_FILE_ENV: str(tmp_path)})


def test_key_file_holds_exactly_one_key_comments_allowed(tmp_path):
    key_file = tmp_path / "signing.key"
    key_file.write_text("# rotated 2026-01\n\nk3:from-file\n")
    assert load_signing_key({KEY_FILE_ENV: str(key_file)}) == SigningKey("k3", b"from-file")
    key_file.write_text("k3:first\nk4:second\n")
    with pytest.raises(ConfigError, match=f"{KEY_FILE_ENV}: .* exactly one"):
        load_signing_key({KEY_FILE_ENV: str(key_file)})
    key_file.write_text("# only a comment\n")
    with pytest.raises(ConfigError, match=f"{KEY_FILE_ENV}: .* exactly one"):
        load_signing_key({KEY_FILE_ENV: str(key_file)})


def test_signed_artifact_verifies_with_the_documented_message(make_config, tmp_path):
    outcome = train_and_evaluate(make_config())
    published = publish_outcome(outcome, tmp_path, SigningKey("key-2026", b"top secret"))
    directory = published.directory
    document = json.loads((directory / "signature.json").read_text())
    assert document["algorithm"] == "HMAC-SHA256"
    assert document["key_id"] == "key-2026"
    assert published.metadata["signing"] == {"algorithm": "HMAC-SHA256", "key_id": "key-2026"}

    message = "\n".join(
        [
            "mlops-artifact-v1",
            f"metadata.json {sha(directory / 'metadata.json')}",
            f"model.joblib {sha(directory / 'model.joblib')}",
            f"model.onnx {sha(directory / 'model.onnx')}",
        ]
    ).encode()
    assert directory_message(directory) == message
    assert directory_message(directory) == artifact_factory.signature_message(directory)
    expected = hmac.new(b"top secret", message, hashlib.sha256).hexdigest()
    assert document["signature"] == expected
    assert verify_signature(directory, {"key-2026": b"top secret"})
    assert not verify_signature(directory, {"key-2026": b"wrong"})
    assert not verify_signature(directory, {"other": b"top secret"})

    # tampering with any signed file breaks the signature
    (directory / "model.joblib").write_bytes(b"tampered")
    assert not verify_signature(directory, {"key-2026": b"top secret"})


def test_unsigned_artifact_has_signing_null(make_config, tmp_path):
    published = publish_outcome(train_and_evaluate(make_config()), tmp_path)
    assert published.metadata["signing"] is None
    assert not published.signed
    assert not (published.directory / "signature.json").exists()


def test_without_a_key_the_local_key_signs_and_is_named_not_shown(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "artifact_signing_key.txt"
    first = resolve_signing_key({}, local_path=path)
    assert first.key is not None
    assert first.key.key_id.startswith("local-")
    assert f"created the local signing key {path}" in (first.message or "")
    assert first.key.secret.decode() not in (first.message or "")
    second = resolve_signing_key({}, local_path=path)
    assert second.key == first.key
    assert "signing with the local key" in (second.message or "")


def test_explicit_keys_win_and_create_nothing(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "artifact_signing_key.txt"
    choice = resolve_signing_key({KEY_ENV: "k1:fake-secret"}, local_path=path)
    assert choice == (SigningKey("k1", b"fake-secret"), None)
    assert not path.exists()


def test_the_fallback_can_be_turned_off(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "artifact_signing_key.txt"
    env = {"ARTIFACT_SIGNING_LOCAL_FALLBACK": "false"}
    choice = resolve_signing_key(env, local_path=path)
    assert choice.key is None
    assert "publishing unsigned (signing: null)" in (choice.message or "")
    assert not path.exists()
    check_signing_settings(env)
    with pytest.raises(ConfigError, match="ARTIFACT_SIGNING_LOCAL_FALLBACK"):
        check_signing_settings({"ARTIFACT_SIGNING_LOCAL_FALLBACK": "maybe"})
