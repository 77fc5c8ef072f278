"""Build the serving images with a real Docker engine and run them the way compose does.

``docker build --target runtime`` and ``--target runtime-slim`` (whatever builder the engine's
client uses), then for each one container with the compose hardening (read-only root
filesystem, tmpfs /tmp, all capabilities dropped, no-new-privileges), a signed model mounted
read-only and the API key and signing key as secret files. Checks: the image's own HEALTHCHECK
turns healthy, /health names the model, /predict answers with the key (401 without), the
process runs as the non-root image user and cannot write outside /tmp, training packages and
code are absent; the image size is printed. The slim image serves the model's ONNX graph and
holds no scikit-learn, SciPy or pandas.

Skipped when no Docker engine answers, unless ``REQUIRE_SYSTEM_TOOLS=1`` (CI) and the engine
was not reported unavailable by ``.ci/run`` (``DOCKER_ENGINE=unavailable``): then it fails.
The base image must be present or pullable; without Docker Hub, ``.ci/build_standin_base.sh``
imports a stand-in under the same tag.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.artifact_factory import IRIS_FEATURES, build_iris_artifact
from tests.compose_hardening import hardening_flags
from tests.dockerfile_stages import ROOT, stage

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

IMAGE = "mlops-toolset/ml-api-service:image-test"
SLIM_IMAGE = "mlops-toolset/ml-api-service-slim:image-test"
TARGETS = {"runtime": IMAGE, "runtime-slim": SLIM_IMAGE}
TRAINING_ONLY = ("metaflow", "skl2onnx", "onnx", "matplotlib")
PICKLE_ONLY = ("sklearn", "scipy", "pandas", "joblib")
HEALTHY_WITHIN_SECONDS = 120
COMPOSE = ROOT / "docker-compose.yaml"
SIGNING_KEY_MOUNT = "/run/secrets/artifact_signing_key"  # a path, not a secret
HARDENING = hardening_flags()  # as compose runs ml-api-service


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; on failure (with ``check``) fail the test with its output."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"docker {' '.join(args[:3])} ... exited {result.returncode}:\n"
            + (result.stdout + result.stderr)[-4000:]
        )
    return result


def require_engine() -> None:
    """Skip (or fail, in CI) unless a Docker engine answers."""
    if shutil.which("docker") is None:
        reason = "no docker CLI (Debian: apt-get install -y docker.io)"
    else:
        probe = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if probe.returncode == 0:
            return
        reason = "no Docker engine reachable (`docker info` failed; start dockerd)"
    required = os.environ.get("REQUIRE_SYSTEM_TOOLS") == "1"
    if required and os.environ.get("DOCKER_ENGINE") != "unavailable":
        pytest.fail(f"{reason}; REQUIRE_SYSTEM_TOOLS=1 requires it")
    pytest.skip(reason)


@dataclass
class Container:
    target: str
    image: str
    name: str
    base_url: str
    api_key: str
    model_version: str
    build_seconds: float
    build_log: str


def _wait_healthy(name: str) -> str:
    """The container's own HEALTHCHECK status once it leaves `starting` (or the deadline)."""
    deadline = time.monotonic() + HEALTHY_WITHIN_SECONDS
    status = "starting"
    while time.monotonic() < deadline:
        state = json.loads(docker("inspect", "--format", "{{json .State}}", name).stdout)
        if not state.get("Running"):
            return "exited"
        status = state.get("Health", {}).get("Status", "none")
        if status in {"healthy", "unhealthy"}:
            return status
        time.sleep(1)
    return status


@pytest.fixture(scope="module", params=list(TARGETS))
def container(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Container]:
    require_engine()
    target: str = request.param
    image = TARGETS[target]
    started = time.monotonic()
    build = docker("build", "--target", target, "-t", image, str(ROOT), timeout=1100)
    build_seconds = time.monotonic() - started

    # What compose mounts: ./artifacts read-only and the two secret files. Bind-mounted files
    # keep their host modes, so they are made readable for the image user whatever the umask.
    workdir = tmp_path_factory.mktemp("image")
    artifacts = workdir / "artifacts"
    key_id, signing_secret = "image-test", secrets.token_urlsafe(32)
    # the slim image serves ONNX graphs only
    built = build_iris_artifact(
        artifacts,
        signing_key=(key_id, signing_secret.encode()),
        with_onnx=target == "runtime-slim",
    )
    api_key = secrets.token_urlsafe(32)
    api_keys_file = workdir / "api_keys.txt"
    api_keys_file.write_text(f"# written by the image test\n{api_key}\n")
    signing_file = workdir / "artifact_signing_key.txt"
    signing_file.write_text(f"{key_id}:{signing_secret}\n")
    for path in [artifacts, *artifacts.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    for path in (api_keys_file, signing_file):
        path.chmod(0o644)

    name = f"mlops-image-test-{target}-{uuid.uuid4().hex[:8]}"
    try:
        docker(
            "run",
            "--detach",
            "--name",
            name,
            *HARDENING,
            "--publish",
            "127.0.0.1::8000",  # a free port on the host's loopback only
            "--volume",
            f"{artifacts}:/app/artifacts:ro",
            "--volume",
            f"{api_keys_file}:/run/secrets/api_keys:ro",
            "--volume",
            f"{signing_file}:{SIGNING_KEY_MOUNT}:ro",
            "--env",
            "API_KEYS_FILE=/run/secrets/api_keys",
            "--env",
            f"ARTIFACT_SIGNING_KEYS_FILE={SIGNING_KEY_MOUNT}",
            "--env",
            "MODEL_POLL_SECONDS=0",
            image,
        )
        port = docker("port", name, "8000/tcp").stdout.split()[0].rsplit(":", 1)[1]
        status = _wait_healthy(name)
        if status != "healthy":
            logs = docker("logs", "--tail", "60", name, check=False)
            pytest.fail(f"container {status}, not healthy:\n{logs.stdout}{logs.stderr}")
        yield Container(
            target,
            image,
            name,
            f"http://127.0.0.1:{port}",
            api_key,
            built.model_version,
            build_seconds,
            build.stdout + build.stderr,
        )
    finally:
        docker("rm", "--force", "--volumes", name, check=False)


def test_serving_build_does_not_build_the_trainer_stage(container: Container) -> None:
    trainer = stage("trainer")
    trainer_only = [c for c in trainer.copies if "requirements.txt" in c.sources]
    assert trainer_only, "the trainer stage no longer installs requirements.txt"
    assert not re.search(r"\bAS trainer\b", container.build_log, flags=re.IGNORECASE)
    assert "COPY requirements.txt" not in container.build_log
    if container.target == "runtime":  # the slim stages come after it
        assert "requirements-serve-slim.txt" not in container.build_log


def test_health_is_ready_with_the_mounted_signed_model(container: Container) -> None:
    response = httpx.get(f"{container.base_url}/health", timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == container.model_version
    if container.target == "runtime-slim":
        assert response.json()["backend"] == "onnx"


def test_predict_answers_with_the_key_from_the_secret_file(container: Container) -> None:
    record = dict(zip(IRIS_FEATURES, [5.1, 3.5, 1.4, 0.2], strict=True))
    url = f"{container.base_url}/predict"
    assert httpx.post(url, json=record, timeout=5).status_code == 401
    response = httpx.post(
        url, json=record, headers={"Authorization": f"Bearer {container.api_key}"}, timeout=5
    )
    assert response.status_code == 200, response.text
    assert response.json()["prediction"] == "setosa"
    assert response.json()["model_version"] == container.model_version


def test_runs_as_the_non_root_image_user(container: Container) -> None:
    ids = docker(
        "exec", container.name, "python", "-c", "import os; print(os.getuid(), os.getgid())"
    )
    uid, gid = ids.stdout.split()
    assert uid != "0"
    assert gid != "0"
    user = docker("inspect", "--format", "{{.Config.User}}", container.image).stdout.strip()
    assert user == f"{uid}:{gid}"
    # PID 1 is the service itself, not a shell or a root wrapper.
    status = docker("exec", container.name, "cat", "/proc/1/status").stdout
    assert re.search(rf"^Uid:\s+{uid}\s+{uid}\s+{uid}\s+{uid}$", status, flags=re.MULTILINE)


WRITE_PROBE = """
import sys
for path in sys.argv[1:]:
    try:
        with open(path, "w") as handle:
            handle.write("x")
        print(path, "written")
    except OSError as exc:
        print(path, exc.strerror)
"""


def test_root_filesystem_is_read_only_except_tmp(container: Container) -> None:
    paths = ["/app/probe", "/opt/venv/probe", "/app/artifacts/probe", "/tmp/probe"]
    out = docker("exec", container.name, "python", "-c", WRITE_PROBE, *paths).stdout
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert lines["/tmp/probe"] == "written"
    for path in paths[:3]:
        assert lines[path] == "Read-only file system", lines


def test_image_holds_no_training_package_or_code(container: Container) -> None:
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    found = docker("exec", container.name, "python", "-c", probe, *TRAINING_ONLY).stdout.strip()
    assert found == "[]", f"training-only packages in the image: {found}"
    listing = docker("exec", container.name, "ls", "/app/src").stdout.split()
    assert "serve" in listing
    assert "training" not in listing


def test_slim_image_holds_no_pickle_runtime(container: Container) -> None:
    """runtime-slim: no scikit-learn, SciPy, pandas or joblib, and ALLOW_PICKLE=false; a
    container started with ALLOW_PICKLE=true stops at once with the reason."""
    if container.target != "runtime-slim":
        pytest.skip("the full image serves pickles")
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    found = docker("exec", container.name, "python", "-c", probe, *PICKLE_ONLY).stdout.strip()
    assert found == "[]", f"pickle-only packages in the slim image: {found}"
    refused = docker(
        "run",
        "--rm",
        "--env",
        "ALLOW_PICKLE=true",
        "--env",
        "AUTH_DISABLED=true",
        container.image,
        check=False,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "ALLOW_PICKLE=true needs scikit-learn" in refused.stderr


def image_size(image: str) -> int | None:
    found = docker("image", "inspect", "--format", "{{.Size}}", image, check=False)
    return int(found.stdout.strip()) if found.returncode == 0 else None


def test_image_size_is_reported(container: Container, capsys: pytest.CaptureFixture[str]) -> None:
    size = image_size(container.image)
    assert size is not None
    base = stage(container.target).base
    with capsys.disabled():
        print(
            f"\n[image] {container.image} (FROM {base}): {size / 1e6:.0f} MB, "
            f"built in {container.build_seconds:.0f} s"
        )
    assert 0 < size < 1_500_000_000, "the serving image grew past 1.5 GB"
    full = image_size(IMAGE)
    if container.target == "runtime-slim" and full is not None:
        assert size < full, f"the slim image ({size} B) is not smaller than the full one"


OWNER_PROBE = """
import os, sys
path = os.path.join(sys.argv[1], "published")
with open(path, "w") as handle:
    handle.write("model")
status = open("/proc/self/status").read()
print(os.getuid(), os.getgid(), os.getgroups(), "CapEff:\\t0000000000000000" in status)
"""


@pytest.mark.parametrize("owner", [(12345, 23456), (0, 0)], ids=["user-owned", "root-owned"])
def test_trainer_entrypoint_writes_artifacts_as_their_owner(
    tmp_path: Path, owner: tuple[int, int]
) -> None:
    """The trainer's entry point with compose's user and capabilities, on the base image (the
    trainer image itself takes minutes to build): files come out owned like ./artifacts."""
    require_engine()
    trainer = yaml.safe_load(COMPOSE.read_text())["services"]["trainer"]
    base = stage("trainer").base
    if docker("image", "inspect", base, check=False).returncode != 0:
        docker("pull", base, timeout=600)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    chown = ["run", "--rm", "--user", "0:0", "--volume", f"{artifacts}:/a", "--entrypoint", "chown"]
    docker(*chown, base, "-R", f"{owner[0]}:{owner[1]}", "/a")  # no host root needed
    entrypoint = ROOT / "deploy" / "docker" / "trainer-entrypoint.sh"
    flags = [f"--cap-drop={c}" for c in trainer["cap_drop"]]
    flags += [f"--cap-add={c}" for c in trainer["cap_add"]]
    flags += [f"--security-opt={o}" for o in trainer["security_opt"]]
    name = f"mlops-entrypoint-test-{uuid.uuid4().hex[:8]}"
    try:
        out = docker(
            "run",
            "--name",
            name,
            "--user",
            trainer["user"],
            *flags,
            "--volume",
            f"{entrypoint}:/usr/local/bin/trainer-entrypoint:ro",
            "--volume",
            f"{artifacts}:/app/artifacts",
            "--entrypoint",
            "/bin/sh",
            base,
            "/usr/local/bin/trainer-entrypoint",
            "python",
            "-c",
            OWNER_PROBE,
            "/app/artifacts",
        ).stdout
        published = artifacts / "published"
        assert (published.stat().st_uid, published.stat().st_gid) == owner
    finally:
        docker("rm", "--force", name, check=False)
        docker(*chown, base, "-R", f"{os.getuid()}:{os.getgid()}", "/a", check=False)
    assert out.split()[:2] == [str(owner[0]), str(owner[1])], out
    if owner[0] != 0:
        assert out.strip().endswith("[] True"), f"groups or capabilities kept: {out}"
