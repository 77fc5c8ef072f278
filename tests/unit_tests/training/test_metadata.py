"""metadata.json carries every field of docs/artifact.md and validates against the schema."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
import sklearn

from src.training.metadata import RunInfo, git_commit
from src.training.steps import train_and_evaluate
from tests.unit_tests.training.conftest import publish_outcome

REPO = Path(__file__).resolve().parents[3]


def test_published_metadata_is_complete(make_config, tmp_path, metadata_schema):
    run = RunInfo("TrainingWorkflow", "123", "a" * 40)
    outcome = train_and_evaluate(make_config(), run)
    published = publish_outcome(outcome, tmp_path)
    metadata = json.loads((published.directory / "metadata.json").read_text())
    jsonschema.validate(metadata, metadata_schema)
    assert metadata["schema_version"] == 1
    assert metadata["trainer_class"] == "IrisClassifier"
    assert metadata["task"] == "classification"
    assert metadata["run"] == {
        "flow_name": "TrainingWorkflow",
        "run_id": "123",
        "pathspec": "TrainingWorkflow/123",
        "git_commit": "a" * 40,
    }
    assert metadata["versions"]["scikit-learn"] == sklearn.__version__
    assert {"python", "numpy", "pandas", "joblib", "skl2onnx", "onnx"} <= set(metadata["versions"])
    metrics = metadata["metrics"]
    assert metrics["selection_metric"] == "accuracy"
    assert metrics["best_candidate"] in {"logistic_regression", "knn"}
    assert [c["name"] for c in metrics["candidates"]] == ["logistic_regression", "knn"]
    for candidate in metrics["candidates"]:
        assert {"name", "estimator", "params", "cv_mean", "cv_std"} <= set(candidate)
    assert metrics["candidates"][0]["estimator"] == "sklearn.linear_model.LogisticRegression"
    assert metrics["quality_gate"]["passed"] is True
    assert {"accuracy", "f1_macro", "per_class", "confusion_matrix"} <= set(metrics["test"])
    data = metadata["data"]
    assert (data["n_rows"], data["n_train"], data["n_test"]) == (150, 120, 30)
    assert data["source"] == "sklearn:iris"
    assert set(metadata["reference"]) == {f["name"] for f in metadata["features"]}
    assert metadata["target"]["distribution"]["count"] == 120
    assert metadata["created_at"].endswith("+00:00")


def test_metadata_fails_the_schema_when_a_field_is_missing(make_config, tmp_path, metadata_schema):
    metadata = publish_outcome(train_and_evaluate(make_config()), tmp_path).metadata
    broken = dict(metadata)
    del broken["reference"]
    with pytest.raises(jsonschema.ValidationError, match="reference"):
        jsonschema.validate(broken, metadata_schema)


def test_git_commit_from_env_or_repository(monkeypatch, tmp_path):
    monkeypatch.setenv("GIT_COMMIT", "B" * 40)
    assert git_commit(tmp_path) == "b" * 40
    monkeypatch.delenv("GIT_COMMIT")
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    assert git_commit(tmp_path) is None  # not inside a repository
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if head.returncode != 0:
        pytest.skip("git is not available")
    assert git_commit(REPO / "src") == head.stdout.strip()


def test_git_commit_from_packed_refs(tmp_path, monkeypatch):
    monkeypatch.delenv("GIT_COMMIT", raising=False)
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    git = tmp_path / ".git"
    git.mkdir()
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "packed-refs").write_text(f"# pack-refs\n{'c' * 40} refs/heads/main\n")
    assert git_commit(tmp_path) == "c" * 40


def test_git_commit_in_a_linked_worktree(tmp_path, monkeypatch):
    """A linked worktree's ``.git`` is a file naming its folder; refs live in the shared one."""
    monkeypatch.delenv("GIT_COMMIT", raising=False)
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    common = tmp_path / "repo.git"
    linked = common / "worktrees" / "wt"
    linked.mkdir(parents=True)
    (common / "refs" / "heads").mkdir(parents=True)
    (common / "refs" / "heads" / "feature").write_text("c" * 40 + "\n")
    (linked / "HEAD").write_text("ref: refs/heads/feature\n")
    (linked / "commondir").write_text("../..\n")
    checkout = tmp_path / "wt"
    checkout.mkdir()
    (checkout / ".git").write_text(f"gitdir: {linked}\n")
    assert git_commit(checkout) == "c" * 40
    (checkout / ".git").write_text("not a gitdir line\n")
    assert git_commit(checkout) is None
