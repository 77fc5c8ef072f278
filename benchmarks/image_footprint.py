"""Footprint of serving images: size, start to ready, and RSS of the worker after warm-up.

    python benchmarks/image_footprint.py IMAGE[,KEY=VALUE...] ... [--runs 5] [--requests 1000]

For each image and run: publish a signed iris model with its ONNX graph (tests/artifact_factory.py),
start one container as docker compose does (read-only, tmpfs /tmp, all capabilities dropped,
no-new-privileges, the model and the key files mounted read-only, ``WORKERS=1``), and time from
the ``docker run`` call to the first 200 on ``GET /health`` (model loaded). Then read the
serving process's VmRSS (the container's PID 1, from the host's /proc), send ``--requests``
single-row ``POST /predict`` on one keep-alive connection, and read VmRSS again. Prints one line
per run and the medians per image. Runs alternate between the images (run 1 of each, then run
2 of each, ...) so that load from other processes on the machine hits them alike.
``KEY=VALUE`` after an image name sets a service setting for it, e.g.
``IMAGE,INFERENCE_BACKEND=sklearn`` (the model also holds the pickled pipeline). Needs a Docker
engine and root (to read the process's /proc entry).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.artifact_factory import IRIS_FEATURES, build_iris_artifact  # noqa: E402
from tests.compose_hardening import hardening_flags  # noqa: E402
from tests.server_process import free_port  # noqa: E402

HARDENING = hardening_flags()  # as compose runs ml-api-service
READY_TIMEOUT_SECONDS = 120
SETOSA = dict(zip(IRIS_FEATURES, [5.1, 3.5, 1.4, 0.2], strict=True))


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()


def vm_rss_mb(pid: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def publish(workdir: Path) -> tuple[Path, Path, Path, str]:
    """A signed iris model with model.onnx, the API key file and the signing key file."""
    artifacts = workdir / "artifacts"
    key_id, secret = "footprint", secrets.token_urlsafe(32)
    build_iris_artifact(artifacts, signing_key=(key_id, secret.encode()), with_onnx=True)
    api_key = secrets.token_urlsafe(32)
    keys = workdir / "api_keys.txt"
    keys.write_text(api_key + "\n")
    signing = workdir / "artifact_signing_key.txt"
    signing.write_text(f"{key_id}:{secret}\n")
    for path in [workdir, artifacts, *artifacts.rglob("*"), keys, signing]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return artifacts, keys, signing, api_key


def one_run(image: str, workdir: Path, env: list[str], requests: int) -> dict[str, float | str]:
    artifacts, keys, signing, api_key = publish(workdir)
    port = free_port()
    name = f"footprint-{uuid.uuid4().hex[:8]}"
    env_args = [arg for pair in env for arg in ("--env", pair)]
    started = time.monotonic()
    docker(
        "run",
        "--detach",
        "--name",
        name,
        *HARDENING,
        "--publish",
        f"127.0.0.1:{port}:8000",
        "--volume",
        f"{artifacts}:/app/artifacts:ro",
        "--volume",
        f"{keys}:/run/secrets/api_keys:ro",
        "--volume",
        f"{signing}:/run/secrets/artifact_signing_key:ro",
        "--env",
        "API_KEYS_FILE=/run/secrets/api_keys",
        "--env",
        "ARTIFACT_SIGNING_KEYS_FILE=/run/secrets/artifact_signing_key",  # pragma: allowlist secret
        "--env",
        "MODEL_POLL_SECONDS=0",
        "--env",
        "WORKERS=1",
        *env_args,
        image,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                health = httpx.get(url + "/health", timeout=1)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > READY_TIMEOUT_SECONDS:
                raise RuntimeError(f"{image} not ready:\n" + docker("logs", "--tail", "30", name))
            time.sleep(0.01)
        ready = time.monotonic() - started
        pid = docker("inspect", "--format", "{{.State.Pid}}", name)
        rss_ready = vm_rss_mb(pid)
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
        ) as client:
            for _ in range(requests):
                answer = client.post("/predict", json=SETOSA)
                answer.raise_for_status()
        return {
            "backend": health.json()["backend"],
            "ready_s": ready,
            "rss_ready_mb": rss_ready,
            "rss_warm_mb": vm_rss_mb(pid),
        }
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", help="IMAGE or IMAGE,KEY=VALUE,...")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float | str]]] = {spec: [] for spec in args.images}
    for run in range(args.runs):
        for spec in args.images:
            image, *env = spec.split(",")
            with tempfile.TemporaryDirectory(prefix="footprint-") as workdir:
                result = one_run(image, Path(workdir), env, args.requests)
            results[spec].append(result)
            print(
                f"{spec} run {run + 1}: backend {result['backend']}, ready in "
                f"{result['ready_s']:.2f} s, RSS {result['rss_ready_mb']:.1f} MB at ready, "
                f"{result['rss_warm_mb']:.1f} MB after {args.requests} /predict",
                flush=True,
            )
    for spec, runs in results.items():
        size = int(docker("image", "inspect", "--format", "{{.Size}}", spec.split(",")[0]))
        print(
            f"== {spec}: {size / 1e6:.0f} MB image, backend {runs[0]['backend']}; median of "
            f"{len(runs)}: ready in {statistics.median(r['ready_s'] for r in runs):.2f} s, RSS "
            f"{statistics.median(r['rss_ready_mb'] for r in runs):.1f} MB at ready, "
            f"{statistics.median(r['rss_warm_mb'] for r in runs):.1f} MB after "
            f"{args.requests} /predict",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
