"""deployed_config: `create --config` picks the config a deployment carries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from src.training.config import DEFAULT_CONFIG_PATH
from src.training.deployed_config import (
    DEPLOY_CONFIG_ENV,
    deployed_config_default,
    is_deploy_command,
    take_config_option,
)

REPO = Path(__file__).resolve().parents[3]


def test_deploy_commands_are_recognised():
    assert is_deploy_command(["--datastore=s3", "argo-workflows", "create", "--only-json"])
    assert is_deploy_command(["step-functions", "create"])
    assert not is_deploy_command(["argo-workflows", "trigger"])
    assert not is_deploy_command(["run", "--config", "x.yaml"])
    assert not is_deploy_command(["argo-workflows", "create", "--help"])


def test_config_option_is_taken_off_the_create_command():
    argv = ["--datastore=s3", "argo-workflows", "create", "--config", "a.yaml", "--only-json"]
    assert take_config_option(argv) == (
        ["--datastore=s3", "argo-workflows", "create", "--only-json"],
        "a.yaml",
    )
    assert take_config_option(["argo-workflows", "create", "--config=b.yaml"]) == (
        ["argo-workflows", "create"],
        "b.yaml",
    )
    assert take_config_option(["argo-workflows", "create"]) == (["argo-workflows", "create"], None)


def test_default_follows_the_deploy_setting(monkeypatch):
    monkeypatch.delenv(DEPLOY_CONFIG_ENV, raising=False)
    assert deployed_config_default() == DEFAULT_CONFIG_PATH
    monkeypatch.setenv(DEPLOY_CONFIG_ENV, "src/training/configs/diabetes.yaml")
    assert deployed_config_default() == "src/training/configs/diabetes.yaml"


def _create(*options: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``run_training_workflow.py argo-workflows create --only-json`` in a child process."""
    command = ["run_training_workflow.py", "argo-workflows", "create", "--only-json", *options]
    return subprocess.run(
        [sys.executable, *command],
        cwd=REPO,
        env={**os.environ, "METAFLOW_USER": "tester", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bad_config_stops_create_before_metaflow(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: IrisClassifier\nmodel_name: x\ncandidates: []\n")
    result = _create("--config", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("config error: candidates")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_bad_schedule_stops_create_before_metaflow():
    result = _create(TRAINING_SCHEDULE="sometimes")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("config error: TRAINING_SCHEDULE:")
