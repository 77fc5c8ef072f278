"""Reproduce the serving images' runtime without a container engine.

For each serving stage (``runtime`` and ``runtime-slim``), read from the Dockerfile: the
stage's COPY sources, WORKDIR, ENV, CMD and HEALTHCHECK, and the build stage its ``COPY
--from`` takes the virtualenv from. Rebuild that stage's virtualenv fresh (uv, only the files
the build stage copies: its requirements file and the package metadata), lay out only the
files the runtime stage copies in a temporary root, publish a test model, then start the
runtime stage's CMD with its ENV (host/port overridden to a free loopback port; API keys from
a secret file as docker compose mounts them) and check /health, /predict, /metrics and the
HEALTHCHECK command.

It fails if serving imports a package the serving requirements do not install (Metaflow,
skl2onnx, ...; in the slim image also scikit-learn, SciPy, pandas) or a file the image does
not copy (src/training, a config outside src/serve). The slim stage is given an ONNX model.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonschema
import pytest

from tests.artifact_factory import IRIS_FEATURES, build_iris_artifact
from tests.dockerfile_stages import ROOT, Stage, stage
from tests.server_process import ServerProcess, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

# PATH in the python:*-slim base images; `$PATH` in an ENV line expands to it.
BASE_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "ml-api.json"
TRAINING_ONLY = ("metaflow", "skl2onnx", "onnx", "matplotlib")
PICKLE_ONLY = ("sklearn", "scipy", "pandas", "joblib")
SERVING_STAGES = ("runtime", "runtime-slim")
SCHEMA = ROOT / "docs" / "artifact-metadata.schema.json"


@dataclass
class Rootfs:
    """A directory standing in for the image's filesystem."""

    root: Path

    def host(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def map_value(self, value: str) -> str:
        """Rewrite absolute container paths in an ENV value to paths under the root."""
        value = value.replace("$PATH", BASE_IMAGE_PATH).replace("${PATH}", BASE_IMAGE_PATH)
        parts = []
        for part in value.split(":"):
            top = part.split("/")[1] if part.startswith("/") and part.count("/") >= 1 else ""
            parts.append(str(self.host(part)) if top and self.host("/" + top).exists() else part)
        return ":".join(parts)


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv not found: it is in validation_requirements.txt (pip install -r ...)")
    return uv


def _copy_from_context(sources: list[str], dest: Path) -> None:
    """COPY <sources...> <dest> from the build context (the repo), like Docker does."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for source in sources:
        src = ROOT / source
        if not src.exists():
            pytest.fail(f"COPY source {source} does not exist in the build context")
        target = dest / src.name if len(sources) > 1 or str(dest).endswith("/") else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(src, target)


def _reproduce_build_stage(build: Stage, rootfs: Rootfs) -> None:
    """Replay the stage that builds the virtualenv: its COPYs and the RUN steps we understand."""
    workdir = rootfs.host(build.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: rootfs.map_value(v) for k, v in build.env.items()}
    venv_python: Path | None = None
    steps = [("COPY", c) for c in build.copies] + [("RUN", i.args) for i in build.all("RUN")]
    steps.sort(key=lambda step: _line_of(build, step))
    for kind, payload in steps:
        if kind == "COPY":
            if payload.from_stage:
                pytest.fail("the runtime test cannot replay COPY --from in the build stage")
            dest = payload.dest
            target = rootfs.host(dest) if dest.startswith("/") else workdir / dest
            _copy_from_context(payload.sources, target)
            continue
        for command in (part.strip() for part in payload.split("&&")):
            venv_python = _replay_run(command, rootfs, workdir, env, venv_python)


def _line_of(build: Stage, step: tuple[str, object]) -> int:
    kind, payload = step
    wanted = [i for i in build.instructions if i.keyword == kind]
    if kind == "COPY":
        index = build.copies.index(payload)
    else:
        index = [i.args for i in wanted].index(payload)
    return wanted[index].line


def _replay_run(
    command: str, rootfs: Rootfs, workdir: Path, env: dict[str, str], venv_python: Path | None
) -> Path | None:
    words = shlex.split(command)
    uv = _uv()
    if words[:3] == ["python", "-m", "venv"]:
        venv = rootfs.host(words[3])
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        return venv / "bin" / "python"
    if words and words[0] in {"groupadd", "useradd", "chmod"}:
        return venv_python  # users and modes: the test runs as whoever runs pytest
    if venv_python is None:
        pytest.fail(f"build stage RUN before its virtualenv exists: {command!r}")
    if words[:2] == ["pip", "install"]:
        args = [w for w in words[2:] if w != "--no-cache-dir"]
        uv_args = []
        while args:
            word = args.pop(0)
            if word == "-r":
                uv_args += ["-r", str(workdir / args.pop(0))]
            elif word == "--no-deps":
                uv_args.append("--no-deps")
            elif word == ".":
                uv_args.append(str(workdir))
            else:
                pytest.fail(f"the runtime test cannot replay pip option {word!r} in {command!r}")
        subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(venv_python), *uv_args],
            check=True,
            cwd=workdir,
        )
        return venv_python
    if words[:2] == ["python", "-c"]:
        subprocess.run([str(venv_python), "-c", words[2]], check=True, cwd=workdir, env=env)
        return venv_python
    pytest.fail(f"the runtime test cannot replay this RUN step: {command!r} (teach it)")
    return None


def _files(root: Path, skip: tuple[Path, ...]) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if not any(p.is_relative_to(s) for s in skip)
    }


@dataclass
class Running:
    base_url: str
    api_key: str
    env: dict[str, str]
    rootfs: Rootfs
    workdir: Path
    model_version: str
    runtime: Stage
    log: Path


@pytest.fixture(scope="module", params=SERVING_STAGES)
def image_runtime(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    runtime = stage(request.param)
    slim = runtime.name == "runtime-slim"
    rootfs = Rootfs(tmp_path_factory.mktemp("image-rootfs"))
    for directory in ("tmp", "run/secrets"):
        rootfs.host(directory).mkdir(parents=True)

    # 1. The runtime stage's COPYs: --from=<stage> replays that stage, the rest come from the repo.
    workdir = rootfs.host(runtime.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for copy in runtime.copies:
        if copy.from_stage:
            _reproduce_build_stage(stage(copy.from_stage), rootfs)
            for source in copy.sources:
                assert rootfs.host(source).exists(), f"stage {copy.from_stage} made no {source}"
            assert copy.sources == [copy.dest], "COPY --from must keep the path (venv paths)"
        else:
            dest = rootfs.host(copy.dest) if copy.dest.startswith("/") else workdir / copy.dest
            _copy_from_context(copy.sources, dest)

    # 2. A published model where the image expects ARTIFACTS_DIR (docker compose mounts it).
    image_env = runtime.env
    artifacts = Path(rootfs.map_value(image_env.get("ARTIFACTS_DIR", runtime.workdir)))
    if not artifacts.is_absolute() or not artifacts.is_relative_to(rootfs.root):
        artifacts = workdir / image_env.get("ARTIFACTS_DIR", "artifacts")
    signing_key = ("runtime-test", secrets.token_urlsafe(32))
    built = build_iris_artifact(
        artifacts, signing_key=(signing_key[0], signing_key[1].encode()), with_onnx=slim
    )

    # 3. Keys as compose secret files, and the image's ENV (paths mapped into the root).
    api_key = secrets.token_urlsafe(32)
    key_file = rootfs.host("/run/secrets/api_keys")
    key_file.write_text(f"# written by the runtime test\n{api_key}\n")
    signing_file = rootfs.host("/run/secrets/artifact_signing_key")
    signing_file.write_text(f"{signing_key[0]}:{signing_key[1]}\n")
    port = free_port()
    env = {k: rootfs.map_value(v) for k, v in image_env.items()}
    env.update(
        {
            "HOME": str(rootfs.host("/nonexistent")),
            "TMPDIR": str(rootfs.host("/tmp")),
            "LANG": "C.UTF-8",
            "FASTAPI_HOST": "127.0.0.1",  # the image binds 0.0.0.0; tests stay on loopback
            "FASTAPI_PORT": str(port),
            "API_KEYS_FILE": str(key_file),
            "ARTIFACT_SIGNING_KEYS_FILE": str(signing_file),  # as compose mounts it
            "MODEL_POLL_SECONDS": "0",
        }
    )
    before = _files(rootfs.root, skip=(rootfs.host("/tmp"),))

    command = runtime.cmd
    executable = shutil.which(command[0], path=env["PATH"])
    assert executable is not None, f"CMD {command[0]!r} not found on the image's PATH"
    assert Path(executable).is_relative_to(rootfs.root), (
        f"CMD {command[0]!r} must resolve inside the image's virtualenv, got {executable}"
    )
    log = rootfs.root.parent / f"{rootfs.root.name}-server.log"
    # the final stage's CMD, exec form, with its ENV only
    server = ServerProcess(env, log, command=[executable, *command[1:]], cwd=workdir, port=port)
    with server:
        server.wait_ready("/health", timeout=90)
        yield Running(server.url, api_key, env, rootfs, workdir, built.model_version, runtime, log)
    # read_only: true in compose: the service must not write outside its tmpfs (/tmp).
    after = _files(rootfs.root, skip=(rootfs.host("/tmp"),))
    written = sorted(after - before)
    assert not written, f"the service wrote outside /tmp (read-only root fs): {written[:10]}"


def _importable(image_runtime: Running, modules: tuple[str, ...]) -> str:
    """Which of ``modules`` the image's virtualenv finds, printed as a Python list."""
    python = image_runtime.rootfs.host("/opt/venv/bin/python")
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    return subprocess.run(
        [str(python), "-c", probe, *modules],
        capture_output=True,
        text=True,
        check=True,
        env=image_runtime.env,
    ).stdout.strip()


def test_image_holds_only_serving_code_and_packages(image_runtime: Running) -> None:
    src = image_runtime.workdir / "src"
    assert (src / "serve" / "app.py").is_file()
    assert not (src / "training").exists()
    found = _importable(image_runtime, TRAINING_ONLY)
    assert found == "[]", f"training-only packages in the serving virtualenv: {found}"


def test_slim_stage_serves_onnx_without_a_pickle_runtime(image_runtime: Running) -> None:
    """runtime-slim: no scikit-learn, SciPy, pandas or joblib in its virtualenv, the model is
    served by onnxruntime, and ALLOW_PICKLE=true stops start-up with the reason."""
    if image_runtime.runtime.name != "runtime-slim":
        pytest.skip("the full image serves pickles")
    assert image_runtime.env["ALLOW_PICKLE"] == "false"
    found = _importable(image_runtime, PICKLE_ONLY)
    assert found == "[]", f"pickle-only packages in the slim virtualenv: {found}"
    health = httpx.get(f"{image_runtime.base_url}/health", timeout=5).json()
    assert health["backend"] == "onnx"
    python = image_runtime.rootfs.host("/opt/venv/bin/python")
    refused = subprocess.run(
        [str(python), *image_runtime.runtime.cmd[1:]],
        cwd=image_runtime.workdir,
        env={**image_runtime.env, "ALLOW_PICKLE": "true", "FASTAPI_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "ALLOW_PICKLE=true needs scikit-learn" in refused.stderr


def test_health_reports_the_model_and_the_package_version(image_runtime: Running) -> None:
    response = httpx.get(f"{image_runtime.base_url}/health", timeout=5)
    assert response.status_code == 200
    body = json.dumps(response.json())
    assert image_runtime.model_version in body
    live = httpx.get(f"{image_runtime.base_url}/health/live", timeout=5)
    assert live.status_code == 200


def test_predict_answers_with_the_key_from_the_secret_file(image_runtime: Running) -> None:
    record = dict(zip(IRIS_FEATURES, [5.1, 3.5, 1.4, 0.2], strict=True))
    url = f"{image_runtime.base_url}/predict"
    assert httpx.post(url, json=record, timeout=5).status_code == 401
    response = httpx.post(
        url,
        json={**record, "request_id": "image-runtime"},
        headers={"Authorization": f"Bearer {image_runtime.api_key}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"] == "setosa"
    assert body["model_version"] == image_runtime.model_version
    # The API version is the package version: the image must carry the package metadata.
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert body["api_version"] == version
    assert response.headers["X-API-Version"] == version


def test_metrics_export_every_series_the_dashboard_queries(image_runtime: Running) -> None:
    headers = {"Authorization": f"Bearer {image_runtime.api_key}"}
    record = dict(zip(IRIS_FEATURES, [6.7, 3.0, 5.2, 2.3], strict=True))
    httpx.post(f"{image_runtime.base_url}/predict", json=record, headers=headers, timeout=5)
    text = httpx.get(f"{image_runtime.base_url}/metrics", headers=headers, timeout=5).text
    exported = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", text, flags=re.MULTILINE))
    dashboard = DASHBOARD.read_text()
    queried = set(re.findall(r"\b(serve_[a-z0-9_]+)", dashboard))
    assert queried, "the dashboard queries no serve_* series"
    assert queried <= exported, f"dashboard series missing from /metrics: {queried - exported}"


def test_healthcheck_command_passes_without_curl(image_runtime: Running) -> None:
    healthcheck = image_runtime.runtime.healthcheck
    assert healthcheck is not None, "the runtime stage has no HEALTHCHECK"
    _, command = healthcheck
    assert "curl" not in command
    assert "wget" not in command
    executable = shutil.which(command[0], path=image_runtime.env["PATH"])
    assert executable is not None
    result = subprocess.run(
        [executable, *command[1:]], env=image_runtime.env, capture_output=True, timeout=10
    )
    assert result.returncode == 0, result.stderr


def test_trainer_stage_publishes_a_model_without_serving_code(tmp_path: Path) -> None:
    """The `trainer` target (docker compose --profile train) replayed the same way: its own
    virtualenv from requirements.txt, only the files it copies, its CMD with its ENV."""
    trainer = stage("trainer")
    rootfs = Rootfs(tmp_path / "rootfs")
    rootfs.host("/tmp").mkdir(parents=True)
    _reproduce_build_stage(trainer, rootfs)
    workdir = rootfs.host(trainer.workdir)
    assert not (workdir / "src" / "serve").exists()

    env = {k: rootfs.map_value(v) for k, v in trainer.env.items()}
    env["LANG"] = "C.UTF-8"
    before = _files(workdir, skip=())
    command = trainer.cmd
    executable = shutil.which(command[0], path=env["PATH"])
    assert executable is not None
    assert Path(executable).is_relative_to(rootfs.root)
    result = subprocess.run(
        [executable, *command[1:]],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

    model_dir = workdir / "artifacts" / "iris_classifier"  # compose mounts ./artifacts here
    version = (model_dir / "LATEST").read_text().strip()
    metadata = json.loads((model_dir / version / "metadata.json").read_text())
    jsonschema.validate(metadata, json.loads(SCHEMA.read_text()))
    assert (model_dir / version / "model.joblib").is_file()
    # /app is root-owned in the image: only the mounted artifacts/ may be written there
    # (Metaflow's datastore and cards go to /tmp).
    written = sorted(_files(workdir, skip=(workdir / "artifacts",)) - before - {"artifacts"})
    assert not written, f"the trainer wrote outside artifacts/ and /tmp: {written[:10]}"
