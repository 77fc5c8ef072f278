"""Settings: defaults, YAML + env precedence, key sources, and one clear message on error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from src.artifact_contract.local_key import ensure_local_key
from src.serve import settings as settings_module
from src.serve.errors import SettingsError
from src.serve.settings import Settings, load_settings

pytestmark = pytest.mark.usefixtures("clean_env")


def test_defaults_match_the_documented_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", "k1")
    s = load_settings()
    assert (s.fastapi_host, s.fastapi_port) == ("127.0.0.1", 8000)
    assert s.artifacts_dir == Path("artifacts")
    assert s.model_name == "iris_classifier"
    assert s.model_version is None
    assert s.max_body_bytes == 1024 * 1024
    assert s.max_batch_rows == 1000
    assert s.workers == 1
    assert s.auth_disabled is False
    assert s.metrics_auth is False
    assert s.log_json is False


def test_the_committed_config_yaml_loads_and_holds_no_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SERVE_CONFIG")
    monkeypatch.setenv("API_KEYS", "k1")
    s = load_settings()
    assert s.fastapi_port == 8000
    assert s.model_poll_seconds == 5
    text = settings_module.DEFAULT_CONFIG_PATH.read_text()
    assert "api_keys:" not in text.lower()


def test_env_overrides_yaml_which_overrides_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("FASTAPI_PORT: 9100\nmax_batch_rows: 7\nlog_level: debug\n")
    monkeypatch.setenv("SERVE_CONFIG", str(config))
    monkeypatch.setenv("FASTAPI_PORT", "9200")
    monkeypatch.setenv("API_KEYS", "k1")
    s = load_settings()
    assert s.fastapi_port == 9200  # env beats yaml
    assert s.max_batch_rows == 7  # yaml beats default
    assert s.log_level == "DEBUG"
    assert s.max_body_bytes == 1024 * 1024  # default


def test_api_keys_are_split_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", " s3cr3t-one , s3cr3t-two,, ")
    monkeypatch.setenv("ADMIN_API_KEYS", "s3cr3t-admin")
    s = load_settings()
    assert [k.get_secret_value() for k in s.all_api_keys()] == ["s3cr3t-one", "s3cr3t-two"]
    assert [k.get_secret_value() for k in s.admin_api_keys] == ["s3cr3t-admin"]
    assert "s3cr3t" not in repr(s)
    assert "s3cr3t" not in str(s)


def test_api_keys_file_lines_comments_and_blanks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# production keys\nfile-key-1\n\n   file-key-2  \n# old: retired\n")
    monkeypatch.setenv("API_KEYS_FILE", str(key_file))
    monkeypatch.setenv("API_KEYS", "env-key")
    s = load_settings()
    assert [k.get_secret_value() for k in s.all_api_keys()] == [
        "env-key",
        "file-key-1",
        "file-key-2",
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FASTAPI_PORT": "70000"}, "FASTAPI_PORT: Input should be less than or equal to 65535"),
        ({"FASTAPI_PORT": "eighty"}, "FASTAPI_PORT: Input should be a valid integer"),
        ({"WORKERS": "0"}, "WORKERS: Input should be greater than or equal to 1"),
        ({"MAX_BODY_BYTES": "-1"}, "MAX_BODY_BYTES: Input should be greater than or equal to 1"),
        ({"MODEL_POLL_SECONDS": "-2"}, "MODEL_POLL_SECONDS: Input should be greater than"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: Input should be 'TRACE'"),
        ({"AUTH_DISABLED": "maybe"}, "AUTH_DISABLED: Input should be a valid boolean"),
        ({"MODEL_NAME": "../etc"}, "MODEL_NAME: String should match pattern"),
        ({"MODEL_VERSION": "../x"}, "MODEL_VERSION: String should match pattern"),
        ({"API_KEYS": "has space,k"}, "API_KEYS: API keys must be non-empty"),
    ],
)
def test_invalid_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    monkeypatch.setenv("API_KEYS", "k1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert expected in str(info.value)


def test_no_keys_and_auth_not_disabled_fails_with_instructions() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "no API keys configured" in message
    assert "API_KEYS" in message
    assert "API_KEYS_FILE" in message
    assert "AUTH_DISABLED" in message


def test_auth_disabled_needs_no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_DISABLED", "true")
    assert load_settings().auth_disabled is True


def test_key_file_with_only_comments_counts_as_no_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# nothing yet\n\n")
    monkeypatch.setenv("API_KEYS_FILE", str(key_file))
    with pytest.raises(SettingsError, match="no API keys configured"):
        load_settings()


def test_missing_key_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("API_KEYS_FILE", str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match=r"API_KEYS_FILE: file .*absent does not exist"):
        load_settings()


def test_unreadable_key_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A directory cannot be read as a file even by root (chmod 000 would not stop root).
    monkeypatch.setenv("API_KEYS_FILE", str(tmp_path))
    with pytest.raises(SettingsError, match=r"API_KEYS_FILE: .* is a directory"):
        load_settings()


def test_undecodable_key_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_bytes(b"\xff\xfe\x00bad")
    monkeypatch.setenv("API_KEYS_FILE", str(key_file))
    with pytest.raises(SettingsError, match="API_KEYS_FILE: cannot read"):
        load_settings()


def test_secrets_in_the_yaml_file_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("api_keys: committed-secret\n")
    monkeypatch.setenv("SERVE_CONFIG", str(config))
    monkeypatch.setenv("API_KEYS", "k1")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "API_KEYS must not be set in" in str(info.value)
    assert "committed-secret" not in str(info.value)


def test_unknown_yaml_key_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("fastapi_prot: 9000\n")
    monkeypatch.setenv("SERVE_CONFIG", str(config))
    monkeypatch.setenv("API_KEYS", "k1")
    with pytest.raises(SettingsError, match="FASTAPI_PROT: unknown setting"):
        load_settings()


def test_missing_explicit_config_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SERVE_CONFIG", str(tmp_path / "nope.yaml"))
    monkeypatch.setenv("API_KEYS", "k1")
    with pytest.raises(SettingsError, match=r"SERVE_CONFIG: config file .* does not exist"):
        load_settings()


def test_malformed_yaml_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("fastapi_port: [1,\n")
    monkeypatch.setenv("SERVE_CONFIG", str(config))
    monkeypatch.setenv("API_KEYS", "k1")
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings()


def test_secret_values_never_appear_in_error_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", "secret with space")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "secret with space" not in str(info.value)


def test_every_field_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"


def _start_up(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Start the server in a child process with an empty config file and only ``env`` set."""
    (tmp_path / "empty.yaml").write_text("")
    return subprocess.run(
        [sys.executable, "-m", "src.serve.app"],
        env={"PATH": "/usr/bin:/bin", "SERVE_CONFIG": str(tmp_path / "empty.yaml"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
    )


def test_start_up_with_invalid_settings_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    result = _start_up(tmp_path, FASTAPI_PORT="99999", API_KEYS="k1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "serve: invalid settings: FASTAPI_PORT: Input should be less than or equal to 65535 "
        "(got '99999')"
    ]
    assert "Traceback" not in result.stderr


def test_start_up_without_keys_fails_loudly(tmp_path: Path) -> None:
    result = _start_up(tmp_path)
    assert result.returncode == 2
    assert "no API keys configured" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_signing_keys_the_local_key_file_is_trusted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("API_KEYS", "k1")
    assert load_settings().signing_keys() == []  # no file yet: nothing trusted
    local = ensure_local_key()  # what training does on its first run here
    s = load_settings()
    assert s.signing_keys() == [local.key]
    assert s.local_signing_key_path() == Path("secrets/artifact_signing_key.txt")
    # explicit keys win: the local file is not added to them
    monkeypatch.setenv("ARTIFACT_SIGNING_KEYS", "own:fake-secret-value")  # pragma: allowlist secret
    explicit = load_settings()
    assert [key.key_id for key in explicit.signing_keys()] == ["own"]
    assert explicit.local_signing_key_path() is None
    # the production setting refuses the fallback
    monkeypatch.delenv("ARTIFACT_SIGNING_KEYS")
    monkeypatch.setenv("ARTIFACT_SIGNING_LOCAL_FALLBACK", "false")
    assert load_settings().signing_keys() == []


def test_a_local_key_file_others_can_read_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("API_KEYS", "k1")
    local = ensure_local_key()
    local.path.chmod(0o644)
    local.path.parent.chmod(0o755)
    with pytest.raises(SettingsError, match=r"ARTIFACT_SIGNING_LOCAL_FALLBACK: .*chmod 600"):
        load_settings()
