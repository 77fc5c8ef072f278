"""Signatures are on by default, so every way of running the project must hand the same signing
key to training and serving: the nox sessions (local key file), docker compose (one
secret) and Kubernetes (one Secret). Nothing turns ALLOW_UNSIGNED on behind the user's back.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from src.serve.artifact import ArtifactRef, load_artifact
from src.serve.settings import load_settings
from src.training.signing import load_signing_key
from tests.artifact_factory import build_iris_artifact
from tests.unit_tests.test_repo_checks import _FakeSession, _load_noxfile

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "kubernetes"


@pytest.fixture
def noxfile(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = _load_noxfile()
    for name in (*module.TRAIN_SIGNING_VARS, *module.SERVE_SIGNING_VARS):
        monkeypatch.delenv(name, raising=False)
    return module


def test_the_local_key_is_created_once_private_and_shared(
    noxfile: Any, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secrets" / "artifact_signing_key.txt"
    session = _FakeSession()
    assert noxfile._signing_env(session, "serve", create=False, path=path) == {}
    assert noxfile._signing_env(session, "train", create=True, path=path) == {
        "ARTIFACT_SIGNING_KEY_FILE": str(path)
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_text()
    assert noxfile._signing_env(session, "serve", create=True, path=path) == {
        "ARTIFACT_SIGNING_KEYS_FILE": str(path)
    }
    assert path.read_text() == content  # reused: earlier models keep verifying
    key_id, secret = content.strip().split(":", 1)
    assert key_id.startswith("local-")
    assert len(secret) >= 40
    assert secret not in " ".join(session.messages)  # never printed

    # What training signs with this file, serving verifies with the same file.
    key = load_signing_key({"ARTIFACT_SIGNING_KEY_FILE": str(path)})
    assert key is not None
    built = build_iris_artifact(tmp_path / "artifacts", signing_key=(key.key_id, key.secret))
    settings = load_settings(
        api_keys="fake-api-key-0123456789",  # pragma: allowlist secret
        artifact_signing_keys_file=path,
        allow_unsigned=False,
    )
    ref = ArtifactRef(built.model_name, built.model_version, built.directory)
    assert load_artifact(ref, settings.keyring()).signed_by == key_id


def test_the_users_own_signing_settings_win(
    noxfile: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "key.txt"
    monkeypatch.setenv("ARTIFACT_SIGNING_KEYS", "fake-id:fake-secret")  # pragma: allowlist secret
    assert noxfile._signing_env(_FakeSession(), "serve", create=True, path=path) == {}
    assert not path.exists()
    monkeypatch.setenv("ARTIFACT_SIGNING_KEY_FILE", "/elsewhere/key")
    assert noxfile._signing_env(_FakeSession(), "train", create=True, path=path) == {}


def test_compose_gives_the_trainer_and_the_service_the_same_secret(noxfile: Any) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    service = compose["services"]["ml-api-service"]
    trainer = compose["services"]["trainer"]
    mounted = "/run/secrets/artifact_signing_key"
    assert service["environment"]["ARTIFACT_SIGNING_KEYS_FILE"] == mounted
    assert trainer["environment"]["ARTIFACT_SIGNING_KEY_FILE"] == mounted
    assert "artifact_signing_key" in service["secrets"]
    assert "artifact_signing_key" in trainer["secrets"]
    source = compose["secrets"]["artifact_signing_key"]["file"]
    assert (ROOT / source).resolve() == noxfile.LOCAL_SIGNING_KEY  # what nox creates
    for name in ("ml-api-service", "trainer"):
        assert "ALLOW_UNSIGNED" not in compose["services"][name].get("environment", {})
        # production: the mounted secret only, never a local key file
        assert compose["services"][name]["environment"]["ARTIFACT_SIGNING_LOCAL_FALLBACK"] == (
            "false"
        )


def _mounted_secret(pod: dict[str, Any], container: dict[str, Any], variable: str) -> str:
    """The Secret name behind the file an environment variable points at."""
    env = {e["name"]: e.get("value") for e in container["env"]}
    path = env[variable]
    (mount,) = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert mount.get("readOnly") is True
    return volume["secret"]["secretName"]


def test_kubernetes_mounts_one_signing_secret_in_the_job_and_the_pods() -> None:
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    job = yaml.safe_load((K8S / "trainer-job.yaml").read_text())
    pod, job_pod = deployment["spec"]["template"]["spec"], job["spec"]["template"]["spec"]
    served = _mounted_secret(pod, pod["containers"][0], "ARTIFACT_SIGNING_KEYS_FILE")
    signed = _mounted_secret(job_pod, job_pod["containers"][0], "ARTIFACT_SIGNING_KEY_FILE")
    assert served == signed == "ml-artifact-signing-key"
    template = yaml.safe_load((K8S / "signing-secret.example.yaml").read_text())
    assert template["metadata"]["name"] == served
    assert template["stringData"] == {"artifact_signing_key": ""}  # a template, never a key
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "signing-secret.example.yaml" not in kustomization["resources"]
    names = {e["name"] for e in pod["containers"][0]["env"]}
    assert "ALLOW_UNSIGNED" not in names
    for container in (pod["containers"][0], job_pod["containers"][0]):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["ARTIFACT_SIGNING_LOCAL_FALLBACK"] == "false"
