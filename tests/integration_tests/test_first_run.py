"""A new user's first run: the README's training command, then its serve command.

In a fresh copy of the project (what ``git clone`` gives: tracked files, no ``artifacts/``
models, no ``secrets/`` keys), ``python run_training_workflow.py run --config
src/training/config.yaml`` runs for real with no signing setting, then ``python -m
src.serve.app`` starts with only ``API_KEYS`` (and its port). Training creates the local signing
key and signs with it; the service trusts that key, says so once, becomes ready and answers
``/predict``. The interpreter is the test's own (its packages are the project's pins).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from src.artifact_contract.local_key import LOCAL_KEY_PATH
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TRAIN_TIMEOUT = 600
API_KEY = "first-run-key-0123456789"  # pragma: allowlist secret
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def fresh_copy(destination: Path) -> Path:
    """The project's files as a clone has them: tracked (and new, not ignored) files only."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # deleted but still listed files are skipped
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A shell's environment: PATH, HOME and a user name, nothing of this test run."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "METAFLOW_USER": "newuser",
        "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "mlops-test-pycache"),
        **extra,
    }


def test_readme_train_then_serve_works_with_only_an_api_key(tmp_path: Path) -> None:
    project = fresh_copy(tmp_path / "project")
    assert not (project / LOCAL_KEY_PATH).exists()
    home = tmp_path / "home"
    home.mkdir()

    trained = subprocess.run(
        [sys.executable, "run_training_workflow.py", "run", "--config", "src/training/config.yaml"],
        cwd=project,
        env=user_env(home),
        capture_output=True,
        text=True,
        timeout=TRAIN_TIMEOUT,
        check=False,
    )
    output = trained.stdout + trained.stderr
    assert trained.returncode == 0, output[-4000:]
    key_file = project / LOCAL_KEY_PATH
    assert f"created the local signing key {LOCAL_KEY_PATH}" in output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip().split(":", 1)[1]
    assert secret not in output  # the path is printed, never the key
    assert "publishing unsigned" not in output
    assert "Published iris_classifier version " in output

    env = user_env(home, API_KEYS=API_KEY)
    with ServerProcess(env, tmp_path / "serve.log", cwd=project) as server:
        server.wait_ready("/health")
        health = httpx.get(server.url + "/health", timeout=10).json()
        assert health["status"] == "ready"
        assert health["model_name"] == "iris_classifier"
        answer = httpx.post(
            server.url + "/predict",
            json=ROW,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["prediction"] == "setosa"
        trusting = [
            line for line in server.logs().splitlines() if "trusting the local key file" in line
        ]
        assert len(trusting) == 1, server.log_tail()
        assert str(LOCAL_KEY_PATH) in trusting[0]
        assert secret not in server.logs()
