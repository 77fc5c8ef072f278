"""deploy/kserve/: the service as a KServe custom runtime (Open Inference Protocol v2).

KServe's custom resources have no offline schema here, so this checks what would break a
deployment: the kinds, the v2 protocol, probes on the OIP health routes, the container port
the service really listens on, every environment variable being a real serving setting, and
the InferenceService naming this runtime and one of its model formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from src.serve.settings import Settings

KSERVE = Path(__file__).resolve().parents[2] / "deploy" / "kserve"
# Read by the image or its libraries rather than by Settings.
NON_SETTINGS_ENV: set[str] = set()


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((KSERVE / name).read_text())


@pytest.fixture(scope="module")
def runtime() -> dict[str, Any]:
    return load("servingruntime.yaml")


def test_the_runtime_speaks_v2_on_the_port_the_service_listens_on(runtime) -> None:
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert runtime["kind"] == "ServingRuntime"
    assert runtime["spec"]["protocolVersions"] == ["v2"]
    (container,) = runtime["spec"]["containers"]
    assert container["name"] == "kserve-container"  # the name KServe's webhook expects
    env = {e["name"]: e.get("value") for e in container["env"]}
    port = int(env["FASTAPI_PORT"])
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert env["FASTAPI_HOST"] == "0.0.0.0"
    assert env["ARTIFACTS_DIR"] == "/mnt/models"  # where KServe mounts storageUri
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": port}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    for variable in ("API_KEYS_FILE", "ARTIFACT_SIGNING_KEYS_FILE"):
        assert str(Path(env[variable]).parent) in mounts  # the key files are really mounted
    assert "/tmp" in mounts
    volumes = {v["name"] for v in runtime["spec"]["volumes"]}
    assert {m["name"] for m in container["volumeMounts"]} <= volumes


def test_every_environment_variable_is_a_serving_setting(runtime) -> None:
    settings = {name.upper() for name in Settings.model_fields}
    (container,) = runtime["spec"]["containers"]
    unknown = {e["name"] for e in container["env"]} - settings - NON_SETTINGS_ENV
    assert not unknown, f"not serving settings: {sorted(unknown)}"


def test_the_inference_service_uses_this_runtime(runtime) -> None:
    service = load("inferenceservice.yaml")
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert service["kind"] == "InferenceService"
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] == "v2"
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert model["modelFormat"]["name"] in formats
    assert model["storageUri"].startswith("pvc://")
