"""Training and serving apply the contract identically: the same keys are accepted, and a
model training signs is verified by serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.serve.artifact import load_artifact, resolve
from src.serve.errors import SettingsError, SignatureInvalidError
from src.serve.settings import Settings, load_settings
from src.serve.signing import Keyring
from src.training.config_loader import validate_config_data
from src.training.errors import ConfigError
from src.training.publish import publish_artifact
from src.training.signing import KEY_ENV, KEY_FILE_ENV, SigningKey, load_signing_key
from src.training.steps import train_and_evaluate
from tests.unit_tests.training.conftest import IRIS_CONFIG, merge

KEY_TEXTS = [
    "k1:fake-secret",
    "k1:fake:secret:with:colons",
    "  k1:fake-secret  ",
    "k-2026_01.prod:fake-sécret-~!@#$%^&*()",
    "k1:fake secret",
    "k1:fake\tsecret",
    "k 1:fake-secret",
    "k1:fake,secret",
    "k1:fake-secret\x07",
    "k1:",
    ":fake-secret",
    "k1-fake-secret",
]


@pytest.fixture
def serving_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No serving setting leaks in from the caller; authentication is off (not under test)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    empty = tmp_path / "serve.yaml"
    empty.write_text("")
    monkeypatch.setenv("SERVE_CONFIG", str(empty))
    monkeypatch.setenv("AUTH_DISABLED", "true")
    return monkeypatch


def training_key(env: dict[str, str]) -> SigningKey | None:
    try:
        return load_signing_key(env)
    except ConfigError:
        return None


def serving_keys(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> list[SigningKey]:
    monkeypatch.setenv(name, value)
    try:
        return load_settings().signing_keys()
    except SettingsError:
        return []
    finally:
        monkeypatch.delenv(name)


@pytest.mark.parametrize("text", KEY_TEXTS)
def test_a_key_is_accepted_by_training_exactly_when_serving_accepts_it(
    serving_env: pytest.MonkeyPatch, tmp_path: Path, text: str
) -> None:
    key_file = tmp_path / "signing.key"
    key_file.write_text(text + "\n", encoding="utf-8")
    by_training = [training_key({KEY_ENV: text}), training_key({KEY_FILE_ENV: str(key_file)})]
    by_serving = [
        serving_keys(serving_env, "ARTIFACT_SIGNING_KEYS", text),
        serving_keys(serving_env, "ARTIFACT_SIGNING_KEYS_FILE", str(key_file)),
    ]
    accepted = by_training[0] is not None
    assert [key is not None for key in by_training] == [accepted, accepted]
    assert by_serving == ([[by_training[0]]] * 2 if accepted else [[], []])


def test_a_model_signed_by_training_is_verified_by_serving(
    serving_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_text = "fake-key-2026:fake-signing-secret:v1"  # pragma: allowlist secret
    key = load_signing_key({KEY_ENV: key_text})
    assert key is not None
    config = validate_config_data(merge(IRIS_CONFIG, {"export_onnx": False}))
    evaluation = train_and_evaluate(config).evaluation
    published = publish_artifact(
        tmp_path, evaluation.draft_metadata, evaluation.model_joblib, None, key
    )

    serving_env.setenv("ARTIFACT_SIGNING_KEYS", key_text)
    keyring = load_settings().keyring()
    ref = resolve(tmp_path, published.model_name)
    assert ref.version == published.model_version
    loaded = load_artifact(ref, keyring)
    assert loaded.signed_by == "fake-key-2026"
    assert loaded.trust_warning is None

    other = Keyring([("fake-key-2026", b"another-secret")], allow_unsigned=True)
    with pytest.raises(SignatureInvalidError):
        load_artifact(ref, other)
