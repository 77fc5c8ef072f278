"""run_training_workflow.py: user-name default, config preflight, argument handling."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import run_training_workflow as entry
from src.training.runtime import (
    DEFAULT_METAFLOW_USER,
    enable_bytecode_cache,
    ensure_metaflow_user,
    read_summary,
    record_summary,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, DEFAULT_METAFLOW_USER),
        ({"USER": "root"}, DEFAULT_METAFLOW_USER),
        ({"METAFLOW_USER": "root"}, DEFAULT_METAFLOW_USER),
        ({"USER": "alice"}, None),
        ({"USERNAME": "bob"}, None),
        ({"METAFLOW_USER": "carol", "USER": "root"}, None),
    ],
)
def test_metaflow_user_default_only_when_none_usable(env, expected):
    before = dict(env)
    assert ensure_metaflow_user(env) == expected
    if expected is None:
        assert env == before  # a usable user name is never overridden
    else:
        assert env["METAFLOW_USER"] == expected


def test_bytecode_cache_only_when_disabled(tmp_path):
    env = {"PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(tmp_path)}
    assert enable_bytecode_cache(env) == str(tmp_path / "mlops-toolset" / "pycache")
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPYCACHEPREFIX"].startswith(str(tmp_path))
    assert enable_bytecode_cache({}) is None
    opted_out = {"PYTHONDONTWRITEBYTECODE": "1", "TRAINING_NO_BYTECODE_CACHE": "1"}
    assert enable_bytecode_cache(opted_out) is None
    assert opted_out["PYTHONDONTWRITEBYTECODE"] == "1"
    own_prefix = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": "/x"}
    assert enable_bytecode_cache(own_prefix) is None


def test_config_argument_forms(monkeypatch):
    monkeypatch.delenv("TRAINING_SUMMARY_FILE", raising=False)
    assert entry.config_argument(["--config", "a.yaml"]) == "a.yaml"
    assert entry.config_argument(["--max-workers", "2", "--config=b.yaml"]) == "b.yaml"
    assert entry.config_argument(["--max-workers", "2"]) is None
    assert entry.is_run_command(["run", "--config", "x"])
    assert not entry.is_run_command(["card", "view", "1/evaluate"])
    assert not entry.is_run_command(["run", "--help"])
    monkeypatch.setenv("TRAINING_SUMMARY_FILE", "/tmp/x")  # a step process inside a run
    assert not entry.is_run_command(["run", "--config", "x"])


def test_summary_file_round_trip(tmp_path, monkeypatch):
    path = tmp_path / "summary.txt"
    monkeypatch.setenv("TRAINING_SUMMARY_FILE", str(path))
    record_summary(["Published x", "metrics"])
    record_summary(["data error: boom\nsecond line"], failed=True)
    assert read_summary(str(path)) == (["Published x", "metrics"], ["data error: boom second line"])
    assert read_summary(str(tmp_path / "none")) == ([], [])


def run_entry(args, cwd, extra_env=None):
    drop = ("USER", "USERNAME", "METAFLOW_USER", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    # a bytecode cache shared by test runs (outside the repo) keeps these subprocesses quick
    env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "mlops-test-pycache"))
    env.update({"HOME": str(cwd), "PYTHONPATH": str(REPO)}, **(extra_env or {}))
    return subprocess.run(
        [sys.executable, str(REPO / "run_training_workflow.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        (
            "trainer: IrisClassifier\nmodel_name: iris\ncandidates:\n"
            "  - {name: lr, estimator: LogisticRegression, grid: {C: [-1]}}\n",
            "config error: candidates.0.grid.C: The 'C' parameter of LogisticRegression",
        ),
        (
            "trainer: Nope\nmodel_name: iris\ncandidates: [{name: lr, estimator: SVC}]\n",
            "config error: trainer: unknown trainer 'Nope'; known trainers: CSVTrainer",
        ),
        (
            "trainer: IrisClassifier\nmodel_name: iris\ncandidates: [{name: x, estimator: Foo}]\n",
            "config error: candidates.0.estimator: unknown estimator 'Foo'",
        ),
    ],
)
def test_bad_config_exits_before_metaflow_with_one_line(tmp_path, config_text, message):
    (tmp_path / "bad.yaml").write_text(config_text)
    result = run_entry(["run", "--config", "bad.yaml"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "artifacts").exists()
    assert not (tmp_path / ".metaflow").exists()  # Metaflow never started


def test_missing_config_file_and_bad_signing_key(tmp_path):
    result = run_entry(["run", "--config", "missing.yaml"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "config error: config: file not found: missing.yaml"
    good = (REPO / "src/training/config.yaml").read_text()
    (tmp_path / "good.yaml").write_text(good)
    result = run_entry(
        ["run", "--config", "good.yaml"], tmp_path, {"ARTIFACT_SIGNING_KEY": "no-secret"}
    )
    assert result.returncode == 2
    assert result.stderr.startswith("config error: ARTIFACT_SIGNING_KEY: must look like")
