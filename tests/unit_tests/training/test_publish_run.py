"""publish_run: publishing a finished run's artifacts (Metaflow client replaced by a stub).

The real client path is covered by tests/integration_tests/test_training_flow.py.
"""

from __future__ import annotations

import json

import pytest

from src.training import publish_run
from src.training.errors import PublishError
from src.training.steps import train_and_evaluate


@pytest.fixture
def fake_run(make_config, monkeypatch):
    evaluation = train_and_evaluate(make_config()).evaluation
    run = {
        "pathspec": "TrainingWorkflow/42",
        "metadata": {
            **evaluation.draft_metadata,
            "run": {**evaluation.draft_metadata["run"], "pathspec": "TrainingWorkflow/42"},
        },
        "model_joblib": evaluation.model_joblib,
        "onnx_model": evaluation.onnx.model_bytes,
        "output_dir": "artifacts",
    }
    seen = []

    def load(pathspec):
        seen.append(pathspec)
        return run

    monkeypatch.setattr(publish_run, "_load_run", load)
    monkeypatch.delenv("ARTIFACT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("ARTIFACT_SIGNING_KEY_FILE", raising=False)
    monkeypatch.setenv("ARTIFACT_SIGNING_LOCAL_FALLBACK", "false")  # unsigned, no key file
    return seen


def test_publishes_once_then_reports_it(fake_run, tmp_path, capsys):
    assert publish_run.main(["TrainingWorkflow/42", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("Published iris_classifier version ")
    assert "publishing unsigned" in out.err
    model_dir = tmp_path / "iris_classifier"
    version = (model_dir / "LATEST").read_text().strip()
    metadata = json.loads((model_dir / version / "metadata.json").read_text())
    assert metadata["run"]["pathspec"] == "TrainingWorkflow/42"

    assert publish_run.main(["42", "--output-dir", str(tmp_path)]) == 0
    assert "already published" in capsys.readouterr().out
    assert publish_run.main(["42", "--output-dir", str(tmp_path), "--force"]) == 0
    assert len([p for p in model_dir.iterdir() if p.is_dir()]) == 2


def test_default_output_dir_is_the_run_config(fake_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARTIFACT_SIGNING_KEY", "k:secret")
    assert publish_run.main(["TrainingWorkflow/42"]) == 0
    assert "publishing unsigned" not in capsys.readouterr().err
    assert (tmp_path / "artifacts" / "iris_classifier" / "LATEST").exists()


def test_errors_exit_one_with_the_reason(monkeypatch, capsys):
    def refuse(pathspec):
        raise PublishError(f"run {pathspec} did not finish successfully")

    monkeypatch.setattr(publish_run, "_load_run", refuse)
    assert publish_run.main(["TrainingWorkflow/7"]) == 1
    assert capsys.readouterr().err.strip() == (
        "publish error: run TrainingWorkflow/7 did not finish successfully"
    )
