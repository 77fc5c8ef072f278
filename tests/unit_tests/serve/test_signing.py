"""Artifact trust: signatures are verified before anything is deserialised.

Unsigned or tampered artifacts are refused (unless ALLOW_UNSIGNED=true for unsigned ones),
keys come from ARTIFACT_SIGNING_KEYS / ARTIFACT_SIGNING_KEYS_FILE by id (rotation), and no
secret ever shows up in a message, a repr or the logs.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pytest

from src.serve.app import create_app
from src.serve.artifact import ArtifactRef, load_artifact
from src.serve.errors import (
    IntegrityError,
    InvalidArtifactError,
    SettingsError,
    SignatureInvalidError,
    UnsignedArtifactError,
)
from src.serve.settings import load_settings
from src.serve.signing import Keyring, message_for
from tests.artifact_factory import (
    BuiltArtifact,
    build_iris_artifact,
    new_version,
    replace_model,
    set_latest,
    sign_artifact,
)
from tests.artifact_factory import signature_message as factory_message
from tests.unit_tests.serve.hardening_support import (
    NEW_KEY,
    OLD_KEY,
    WRONG_SECRET,
    build_signed,
    captured_logs,
    key_spec,
    signed_settings,
)
from tests.unit_tests.serve.helpers import ADMIN, AUTH, IRIS_ROW, AppClient, metric_value

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]

STRICT = Keyring([NEW_KEY], allow_unsigned=False)


def _ref(built: BuiltArtifact) -> ArtifactRef:
    return ArtifactRef(built.model_name, built.model_version, built.directory)


def _flip_byte(path: Path, index: int = -10) -> None:
    data = bytearray(path.read_bytes())
    data[index] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record every joblib.load the loader attempts (none may happen for a refused artifact)."""
    calls: list[object] = []
    real = joblib.load

    def recording_load(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(joblib, "load", recording_load)
    return calls


# --- the signed message ---------------------------------------------------------------------------


def test_the_message_is_the_documented_one(artifacts: Path) -> None:
    built = build_signed(artifacts)
    files = {
        name: (built.directory / name).read_bytes() if (built.directory / name).exists() else None
        for name in ("metadata.json", "model.joblib", "model.onnx")
    }
    assert message_for(files) == factory_message(built.directory)


def test_a_signed_artifact_loads_and_reports_its_key(
    artifacts: Path, no_unpickling: list[object]
) -> None:
    built = build_signed(artifacts)
    loaded = load_artifact(_ref(built), STRICT)
    assert loaded.metadata.signing == {"algorithm": "HMAC-SHA256", "key_id": NEW_KEY[0]}
    assert len(no_unpickling) == 1


# --- refused: tampering, wrong key, unknown key, missing signature ------------------------------


def _tamper_model(built: BuiltArtifact) -> None:
    _flip_byte(built.directory / "model.joblib")


def _tamper_metadata(built: BuiltArtifact) -> None:
    path = built.directory / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["metrics"]["test"]["accuracy"] = 1.0  # a "better" model, same pickle
    path.write_text(json.dumps(metadata, indent=2))


def _tamper_metadata_hash(built: BuiltArtifact) -> None:
    # Swap in another pickle and fix up its recorded sha256/size: only the signature catches it.
    other = build_iris_artifact(built.root, model_name="other", C=0.01)
    replace_model(built.directory, (other.directory / "model.joblib").read_bytes())


def _add_onnx(built: BuiltArtifact) -> None:
    (built.directory / "model.onnx").write_bytes(b"not a real onnx model")


@pytest.mark.parametrize(
    "tamper",
    [_tamper_model, _tamper_metadata, _tamper_metadata_hash, _add_onnx],
    ids=["flipped-byte-in-model", "edited-metadata", "swapped-model-and-hash", "added-onnx"],
)
def test_tampered_artifacts_are_refused_before_unpickling(
    artifacts: Path, no_unpickling: list[object], tamper: object
) -> None:
    built = build_signed(artifacts)
    tamper(built)  # type: ignore[operator]
    with pytest.raises(SignatureInvalidError) as info:
        load_artifact(_ref(built), STRICT)
    assert "signature does not match" in info.value.message
    assert info.value.code == "artifact_signature_invalid"
    assert no_unpickling == []


def test_a_wrong_secret_under_the_right_key_id_is_refused(
    artifacts: Path, no_unpickling: list[object]
) -> None:
    built = build_signed(artifacts, key=(NEW_KEY[0], WRONG_SECRET))
    with pytest.raises(SignatureInvalidError, match="signature does not match"):
        load_artifact(_ref(built), STRICT)
    # A wrong signature is never excused, not even for local work.
    with pytest.raises(SignatureInvalidError):
        load_artifact(_ref(built), Keyring([NEW_KEY], allow_unsigned=True))
    assert no_unpickling == []


def test_an_unknown_key_id_is_refused_naming_it(
    artifacts: Path, no_unpickling: list[object]
) -> None:
    built = build_signed(artifacts, key=("fake-key-unknown", NEW_KEY[1]))
    with pytest.raises(SignatureInvalidError) as info:
        load_artifact(_ref(built), STRICT)
    assert "key id 'fake-key-unknown'" in info.value.message
    assert f"configured: {NEW_KEY[0]}" in info.value.message
    assert no_unpickling == []


def test_a_missing_signature_is_refused(artifacts: Path, no_unpickling: list[object]) -> None:
    built = build_iris_artifact(artifacts)  # unsigned: signing null, no signature.json
    with pytest.raises(UnsignedArtifactError) as info:
        load_artifact(_ref(built), STRICT)
    assert info.value.code == "artifact_unsigned"
    assert "is not signed" in info.value.message
    assert "ALLOW_UNSIGNED=true" in info.value.message
    assert no_unpickling == []


def test_a_deleted_signature_is_refused_even_when_unsigned_is_allowed(artifacts: Path) -> None:
    built = build_signed(artifacts)
    (built.directory / "signature.json").unlink()
    with pytest.raises(UnsignedArtifactError):
        load_artifact(_ref(built), STRICT)
    # metadata (signing.key_id) still says it was signed: a damaged copy or a stripped signature
    with pytest.raises(SignatureInvalidError, match=r"signature\.json is missing"):
        load_artifact(_ref(built), Keyring([], allow_unsigned=True))


def test_metadata_must_name_the_key_that_signed_it(artifacts: Path) -> None:
    built = build_signed(
        artifacts,
        metadata_overrides={"signing": {"algorithm": "HMAC-SHA256", "key_id": OLD_KEY[0]}},
    )
    with pytest.raises(SignatureInvalidError, match="does not match the key that signed it"):
        load_artifact(_ref(built), Keyring([OLD_KEY, NEW_KEY], allow_unsigned=False))


@pytest.mark.parametrize(
    "document",
    [
        b"not json",
        b"[]",
        b'{"algorithm": "HMAC-MD5", "key_id": "fake-key-2026", "signature": "00"}',
        b'{"algorithm": "HMAC-SHA256", "key_id": "", "signature": "' + b"0" * 64 + b'"}',
        b'{"algorithm": "HMAC-SHA256", "key_id": "fake-key-2026", "signature": "abc"}',
        b'{"algorithm": "HMAC-SHA256", "key_id": "fake-key-2026", "signature": 12}',
        b'{"pad": "' + b"x" * 10_000 + b'"}',
    ],
    ids=["not-json", "array", "md5", "empty-key-id", "short-hex", "number", "huge"],
)
def test_malformed_signature_documents_are_refused(
    artifacts: Path, no_unpickling: list[object], document: bytes
) -> None:
    built = build_signed(artifacts)
    (built.directory / "signature.json").write_bytes(document)
    with pytest.raises(SignatureInvalidError):
        load_artifact(_ref(built), Keyring([NEW_KEY], allow_unsigned=True))
    assert no_unpickling == []


def test_missing_metadata_is_refused_before_anything_else(artifacts: Path) -> None:
    built = build_signed(artifacts)
    (built.directory / "metadata.json").unlink()
    with pytest.raises(InvalidArtifactError, match=r"metadata\.json is missing"):
        load_artifact(_ref(built), STRICT)


def test_a_validly_signed_but_truncated_model_still_fails_its_sha256(artifacts: Path) -> None:
    # Defence in depth: a signature over broken files (e.g. re-signed by mistake) does not
    # bypass the sha256/size check recorded in metadata.
    built = build_signed(artifacts)
    model = built.directory / "model.joblib"
    model.write_bytes(model.read_bytes()[:-100])
    sign_artifact(built.directory, *NEW_KEY)
    with pytest.raises(IntegrityError, match="truncated or replaced"):
        load_artifact(_ref(built), STRICT)


# --- rotation and ALLOW_UNSIGNED ------------------------------------------------------------------


def test_rotation_old_and_new_keys_are_both_accepted(artifacts: Path) -> None:
    old = build_signed(artifacts, key=OLD_KEY, model_version=new_version(-10))
    new = build_signed(artifacts, key=NEW_KEY)
    both = Keyring([OLD_KEY, NEW_KEY], allow_unsigned=False)
    assert load_artifact(_ref(old), both).metadata.signing["key_id"] == OLD_KEY[0]
    assert load_artifact(_ref(new), both).metadata.signing["key_id"] == NEW_KEY[0]
    # After the old key is retired, what it signed is refused.
    with pytest.raises(SignatureInvalidError, match="not configured"):
        load_artifact(_ref(old), Keyring([NEW_KEY], allow_unsigned=False))


def test_allow_unsigned_accepts_unsigned_and_unknown_key_ids_unverified(artifacts: Path) -> None:
    lenient = Keyring([], allow_unsigned=True)
    unsigned = build_iris_artifact(artifacts, model_version=new_version(-10))
    assert load_artifact(_ref(unsigned), lenient).metadata.signing is None
    signed = build_signed(artifacts)
    assert load_artifact(_ref(signed), lenient).pipeline is not None


# --- keys: parsing, settings, secrecy -------------------------------------------------------------


def test_the_keyring_never_shows_a_secret_and_refuses_one_id_with_two_secrets() -> None:
    keyring = Keyring([OLD_KEY, NEW_KEY], allow_unsigned=False)
    assert keyring.key_ids == (OLD_KEY[0], NEW_KEY[0])
    assert OLD_KEY[1].decode() not in repr(keyring)
    with pytest.raises(ValueError, match="configured twice"):
        Keyring([NEW_KEY, (NEW_KEY[0], WRONG_SECRET)], allow_unsigned=False)


def test_settings_read_keys_from_env_and_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "signing.keys"
    key_file.write_text(f"# rotated 2026-01\n{key_spec(OLD_KEY)}\n\n{key_spec(NEW_KEY)}\n")
    clean_env.setenv("API_KEYS", "fake-api-key-0123456789")
    clean_env.setenv("ARTIFACT_SIGNING_KEYS", key_spec(OLD_KEY, NEW_KEY))
    assert [k for k, _ in load_settings().signing_keys()] == [OLD_KEY[0], NEW_KEY[0]]
    clean_env.delenv("ARTIFACT_SIGNING_KEYS")
    clean_env.setenv("ARTIFACT_SIGNING_KEYS_FILE", str(key_file))
    settings = load_settings()
    assert settings.signing_keys() == [OLD_KEY, NEW_KEY]
    assert settings.allow_unsigned is False  # the default: signatures required
    assert OLD_KEY[1].decode() not in repr(settings)
    assert OLD_KEY[1].decode() not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ARTIFACT_SIGNING_KEYS": "fake-key-2026"}, "ARTIFACT_SIGNING_KEYS"),
        ({"ARTIFACT_SIGNING_KEYS": "fake-key-2026:"}, "ARTIFACT_SIGNING_KEYS"),
        ({"ARTIFACT_SIGNING_KEYS_FILE": "/nonexistent/keys"}, "ARTIFACT_SIGNING_KEYS_FILE"),
    ],
)
def test_bad_signing_key_settings_stop_start_up_without_showing_secrets(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    clean_env.setenv("API_KEYS", "fake-api-key-0123456789")
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(SettingsError, match=message) as info:
        load_settings()
    assert "fake-key-2026" not in str(info.value)


def test_same_id_with_two_secrets_stops_start_up(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("API_KEYS", "fake-api-key-0123456789")
    clean_env.setenv("ARTIFACT_SIGNING_KEYS", key_spec(NEW_KEY, (NEW_KEY[0], WRONG_SECRET)))
    with pytest.raises(SettingsError, match="configured twice") as info:
        load_settings()
    assert NEW_KEY[1].decode() not in str(info.value)


def test_signing_keys_cannot_come_from_the_committed_config_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text(f"artifact_signing_keys: {key_spec(NEW_KEY)}\n")
    clean_env.setenv("SERVE_CONFIG", str(config))
    clean_env.setenv("API_KEYS", "fake-api-key-0123456789")
    with pytest.raises(SettingsError, match="ARTIFACT_SIGNING_KEYS must not be set in") as info:
        load_settings()
    assert NEW_KEY[1].decode() not in str(info.value)


# --- the service: start-up and reload -------------------------------------------------------------


def _failures(client: AppClient, reason: str) -> float:
    return metric_value(
        client.get("/metrics").text,
        "serve_model_reload_failures_total",
        {"model_name": "iris_classifier", "reason": reason},
    )


@pytest.mark.parametrize(
    ("publish", "reason", "code"),
    [
        (lambda root: build_iris_artifact(root), "is not signed", "artifact_unsigned"),
        (
            lambda root: build_signed(root, key=(NEW_KEY[0], WRONG_SECRET)),
            "signature does not match",
            "artifact_signature_invalid",
        ),
        (
            lambda root: build_signed(root, key=("fake-key-unknown", NEW_KEY[1])),
            "not configured here",
            "artifact_signature_invalid",
        ),
    ],
    ids=["unsigned", "wrong-key", "unknown-key-id"],
)
def test_start_up_refuses_untrusted_artifacts_with_the_reason(
    artifacts: Path, publish: object, reason: str, code: str
) -> None:
    publish(artifacts)  # type: ignore[operator]
    with AppClient(create_app(signed_settings(artifacts))) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert "model refused" in health.json()["reason"]
        assert reason in health.json()["reason"]
        assert NEW_KEY[1].decode() not in health.text
        assert _failures(client, code) == 1
        r = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert r.status_code == 503


def test_start_up_serves_a_signed_artifact(artifacts: Path) -> None:
    built = build_signed(artifacts)
    with AppClient(create_app(signed_settings(artifacts))) as client:
        assert client.get("/health").json()["model_version"] == built.model_version
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).json()["prediction"] == (
            "setosa"
        )
        assert client.get("/model", headers=AUTH).json()["signing"]["key_id"] == NEW_KEY[0]


def test_a_tampered_new_version_is_refused_on_reload_and_the_old_keeps_serving(
    artifacts: Path,
) -> None:
    v1 = build_signed(artifacts, model_version=new_version(-10))
    with AppClient(create_app(signed_settings(artifacts))) as client, captured_logs() as logs:
        v2 = build_signed(artifacts, set_latest=False)
        _tamper_model(v2)
        set_latest(artifacts, v2.model_name, v2.model_version)
        r = client.post("/admin/reload", headers=ADMIN)
        assert r.status_code == 409
        assert "signature does not match" in r.json()["error"]["message"]
        assert client.get("/health").json()["model_version"] == v1.model_version
        p = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert p.status_code == 200
        assert p.json()["model_version"] == v1.model_version
        assert _failures(client, "artifact_signature_invalid") == 1
    text = logs.getvalue()
    assert f"model version {v2.model_version} refused, still serving {v1.model_version}" in text
    assert NEW_KEY[1].decode() not in text


def test_rotation_through_the_service(artifacts: Path) -> None:
    build_signed(artifacts, key=OLD_KEY, model_version=new_version(-10))
    settings = signed_settings(artifacts, OLD_KEY, NEW_KEY)
    with AppClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        v2 = build_signed(artifacts, key=NEW_KEY)
        r = client.post("/admin/reload", headers=ADMIN)
        assert r.status_code == 200
        assert r.json()["model_version"] == v2.model_version


def test_allow_unsigned_serves_unsigned_models_with_a_loud_warning(artifacts: Path) -> None:
    built = build_iris_artifact(artifacts)
    app = create_app(signed_settings(artifacts, allow_unsigned=True))  # configures logging
    with captured_logs() as logs, AppClient(app) as client:
        assert client.get("/health").json()["model_version"] == built.model_version
    text = logs.getvalue()
    assert "WARNING ALLOW_UNSIGNED=true" in text
    assert f"version {built.model_version} is unsigned" in text


def test_no_signing_keys_and_no_opt_out_refuses_with_instructions(artifacts: Path) -> None:
    build_signed(artifacts)
    from tests.unit_tests.serve.helpers import make_settings

    app = create_app(make_settings(artifacts, allow_unsigned=False))
    with captured_logs() as logs, AppClient(app) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert "not configured here" in health.json()["reason"]
    assert "no artifact signing keys configured" in logs.getvalue()
