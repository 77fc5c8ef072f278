"""Several models in one real ``python -m src.serve.app`` process (tests/server_process.py):

* a classifier and a regressor answered by name, matching in-process predictions;
* promote, roll back and prune with the registry tool against the running service: the served
  version follows the alias without a restart (the rollback time is printed), a refused
  promote changes nothing, prune keeps LATEST and aliased versions;
* broken models (bad signature, corrupt file) next to healthy ones;
* ``WORKERS=2``: one ``POST /admin/reload`` and both workers serve the new version.

Each test prints its figures (``pytest -s`` shows them).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import pytest

from src.artifact_contract.aliases import read_alias
from tests.artifact_factory import (
    build_iris_artifact,
    build_regressor_artifact,
    diabetes_frame,
    iris_frame,
    new_version,
    sign_artifact,
)
from tests.polling import wait_for
from tests.server_process import REPO_ROOT, ServerPool

pytestmark = pytest.mark.integration

API_KEY = "fake-fleet-api-key-0123"  # pragma: allowlist secret
ADMIN_KEY = "fake-fleet-admin-key-456"  # pragma: allowlist secret
KEY = ("fake-fleet-key", b"fake-fleet-signing-secret")  # pragma: allowlist secret
OTHER_KEY = ("fake-fleet-key", b"another-secret-entirely")  # pragma: allowlist secret
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
KEYS_ENV = f"{KEY[0]}:{KEY[1].decode()}"
IRIS_ROW = iris_frame()[0].iloc[0].to_dict()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerPool]:
    """Servers with signature checking on, ready once /health/live answers."""
    with ServerPool(
        tmp_path, API_KEYS=API_KEY, ADMIN_API_KEYS=ADMIN_KEY, ARTIFACT_SIGNING_KEYS=KEYS_ENV
    ) as pool:
        yield pool


def registry(artifacts: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m src.artifact_contract.registry`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "src.artifact_contract.registry", *argv],
        cwd=REPO_ROOT,
        env={
            "ARTIFACTS_DIR": str(artifacts),
            "ARTIFACT_SIGNING_KEYS": KEYS_ENV,
            "PATH": "/usr/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def served_version(url: str, path: str = "/predict") -> str:
    r = httpx.post(url + path, json=IRIS_ROW, headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["model_version"])


def test_a_classifier_and_a_regressor_answer_by_name(
    start_server: ServerPool, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    iris = build_iris_artifact(artifacts, signing_key=KEY)
    regressor = build_regressor_artifact(artifacts, signing_key=KEY)
    server = start_server(
        artifacts, MODEL_NAMES="iris_classifier,diabetes_regressor", ready_path="/health"
    )
    cases = (
        (iris, iris_frame()[0].iloc[::15]),
        (regressor, diabetes_frame()[0].iloc[::40]),
    )
    for built, rows in cases:
        pipeline = joblib.load(built.directory / "model.joblib")
        expected = pipeline.predict(rows).tolist()
        records = rows.to_dict(orient="records")
        r = httpx.post(
            f"{server.url}/models/{built.model_name}/predict/batch",
            json={"records": records},
            headers=AUTH,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        got = [p["prediction"] for p in r.json()["predictions"]]
        assert got == pytest.approx(expected) if built is regressor else got == expected
        one = httpx.post(
            f"{server.url}/models/{built.model_name}/predict",
            json=records[0],
            headers=AUTH,
            timeout=10,
        ).json()
        assert one["model_name"] == built.model_name
        assert one["prediction"] == pytest.approx(expected[0])
    models = httpx.get(server.url + "/models", headers=AUTH, timeout=10).json()["models"]
    assert [(m["name"], m["ready"], m["version"]) for m in models] == [
        ("iris_classifier", True, iris.model_version),
        ("diabetes_regressor", True, regressor.model_version),
    ]
    assert served_version(server.url) == iris.model_version  # the default model


def test_promote_rollback_and_prune_against_a_running_service(
    start_server: ServerPool, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    v1, v2, v3 = (
        build_iris_artifact(artifacts, model_version=new_version(offset), signing_key=KEY, C=c)
        for offset, c in ((-20, 1.0), (-10, 0.05), (0, 0.5))
    )
    build_regressor_artifact(artifacts, signing_key=KEY)
    assert (
        registry(
            artifacts, "promote", "iris_classifier", v1.model_version, "--alias", "champion"
        ).returncode
        == 0
    )
    server = start_server(
        artifacts,
        MODEL_NAMES="iris_classifier@champion,diabetes_regressor",
        MODEL_POLL_SECONDS="0.5",
        ready_path="/health",
    )
    assert served_version(server.url) == v1.model_version  # the alias, not LATEST (v3)

    promoted = registry(
        artifacts, "promote", "iris_classifier", v2.model_version, "--alias", "champion"
    )
    assert promoted.returncode == 0, promoted.stderr
    wait_for(lambda: served_version(server.url) == v2.model_version, 30, "champion -> v2")

    rollback = registry(artifacts, "rollback", "iris_classifier", "--alias", "champion")
    moved = time.monotonic()  # the alias file is replaced before the tool exits
    assert rollback.returncode == 0, rollback.stderr
    wait_for(
        lambda: served_version(server.url) == v1.model_version, 30, "rollback to v1", step=0.02
    )
    print(
        f"\nrollback: alias moved -> first answer from {v1.model_version} in "
        f"{time.monotonic() - moved:.2f} s (MODEL_POLL_SECONDS=0.5)"
    )

    tampered = v3.directory / "model.joblib"
    tampered.write_bytes(tampered.read_bytes() + b"\0")
    alias_files = sorted(
        (p.name, p.read_bytes()) for p in (v1.directory.parent / "aliases").iterdir()
    )
    refused = registry(
        artifacts, "promote", "iris_classifier", v3.model_version, "--alias", "champion"
    )
    assert refused.returncode == 1
    assert "does not verify" in refused.stderr
    assert (
        sorted((p.name, p.read_bytes()) for p in (v1.directory.parent / "aliases").iterdir())
        == alias_files
    )
    time.sleep(1.5)  # three poll intervals: nothing moved, nothing reloaded
    assert served_version(server.url) == v1.model_version

    pruned = registry(artifacts, "prune", "iris_classifier", "--keep", "1")
    assert pruned.returncode == 0, pruned.stderr
    # v3: LATEST, v1: champion, v2: where champion would roll back to... it was rolled back
    # from, so the stack is [v1]; v2 is neither named nor a rollback target and goes.
    assert v1.directory.is_dir()
    assert v3.directory.is_dir()
    assert not v2.directory.exists()
    assert read_alias(v1.directory.parent, "champion") == v1.model_version
    assert served_version(server.url) == v1.model_version
    listing = registry(artifacts, "list", "iris_classifier")
    print(listing.stdout)
    assert "champion" in listing.stdout
    assert "REFUSED" in listing.stdout  # the tampered v3


def test_broken_models_leave_the_healthy_ones_serving(
    start_server: ServerPool, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    build_iris_artifact(artifacts, signing_key=KEY)
    regressor = build_regressor_artifact(artifacts, signing_key=KEY)
    bad_signature = build_iris_artifact(artifacts, model_name="iris_badsig", signing_key=KEY)
    sign_artifact(bad_signature.directory, *OTHER_KEY)
    corrupt = build_iris_artifact(artifacts, model_name="iris_corrupt", signing_key=KEY)
    (corrupt.directory / "model.joblib").write_bytes(b"not a pickle")
    sign_artifact(corrupt.directory, *KEY)  # signed as it is: the metadata's sha256 catches it
    server = start_server(
        artifacts,
        MODEL_NAMES="iris_classifier,diabetes_regressor,iris_badsig,iris_corrupt",
        ready_path="/health",  # the rule: ready while the default model serves
    )
    health = httpx.get(server.url + "/health", timeout=10)
    assert health.status_code == 200
    models = {m["name"]: m for m in health.json()["models"]}
    assert models["iris_badsig"]["ready"] is False
    assert "signature does not match" in models["iris_badsig"]["reason"]
    assert models["iris_corrupt"]["ready"] is False
    assert "truncated or replaced" in models["iris_corrupt"]["reason"]
    assert models["diabetes_regressor"]["version"] == regressor.model_version
    r = httpx.post(server.url + "/models/iris_badsig/predict", json=IRIS_ROW, headers=AUTH)
    assert r.status_code == 503
    assert served_version(server.url, "/models/iris_classifier/predict")
    print(
        f"\n/models reasons: badsig={models['iris_badsig']['reason']!r} "
        f"corrupt={models['iris_corrupt']['reason']!r}"
    )


def test_one_admin_reload_reaches_both_workers(start_server: ServerPool, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    v1 = build_iris_artifact(artifacts, model_version=new_version(-10), signing_key=KEY)
    server = start_server(artifacts, WORKERS="2", MODEL_POLL_SECONDS="0", ready_path="/health")
    wait_for(lambda: len(server.workers()) == 2, 60, "two workers")
    wait_for(
        lambda: server.logs().count(f"version {v1.model_version} loaded") == 2, 60, "both load"
    )
    v2 = build_iris_artifact(artifacts, model_version=new_version(), signing_key=KEY, C=0.05)
    r = httpx.post(server.url + "/admin/reload", headers=ADMIN, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == v2.model_version
    wait_for(
        lambda: server.logs().count(f"version {v2.model_version} loaded") == 2, 10, "both reload"
    )
    versions = set()
    for _ in range(40):  # a new connection each: the kernel spreads them over both workers
        with httpx.Client(timeout=10) as client:
            versions.add(
                client.post(server.url + "/predict", json=IRIS_ROW, headers=AUTH).json()[
                    "model_version"
                ]
            )
    assert versions == {v2.model_version}
    workers = sorted(worker.pid for worker in server.workers())
    print(f"\nWORKERS=2 (pids {workers}): one POST /admin/reload, both load {v2.model_version}")
