"""The real TrainingWorkflow, run as a user runs it, in a temporary directory.

Each test starts ``python run_training_workflow.py run --config <small config>`` as a
subprocess with no user name in the environment (as root in CI), its own HOME and Metaflow
datastore, then checks what was (or was not) published.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import joblib
import jsonschema
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import yaml

from src.training.signing import verify_signature
from tests.artifact_factory import IRIS_FEATURES, SCHEMA_PATH

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ENTRY = REPO / "run_training_workflow.py"
TIMEOUT = 300

SMALL_CONFIG: dict[str, Any] = {
    "trainer": "IrisClassifier",
    "model_name": "iris_classifier",
    "test_size": 0.2,
    "random_seed": 11,
    "cv_folds": 3,
    "candidates": [
        {
            "name": "logistic_regression",
            "estimator": "LogisticRegression",
            "params": {"max_iter": 500},
            "grid": {"C": [1.0, 10.0]},
        },
        {"name": "knn", "estimator": "KNeighborsClassifier", "grid": {"n_neighbors": [5]}},
    ],
    "quality_gate": {"min_score": 0.8},
    "output_dir": "artifacts",
}


class Workdir:
    """A temporary project directory with its own HOME and Metaflow datastore."""

    def __init__(self, root: Path) -> None:
        self.root = root
        drop = {"USER", "USERNAME", "METAFLOW_USER", "SUDO_USER", "PYTHONDONTWRITEBYTECODE"}
        drop |= {"ARTIFACT_SIGNING_KEY", "ARTIFACT_SIGNING_KEY_FILE", "TRAINING_SUMMARY_FILE"}
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        self.env.update(
            {
                "HOME": str(root),
                "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root),
                "PYTHONPATH": str(REPO),
                # unsigned unless a test gives a key (the local key: test_first_run.py)
                "ARTIFACT_SIGNING_LOCAL_FALLBACK": "false",
                # shared bytecode cache outside the repo: each step is a new Python process
                "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "mlops-test-pycache"),
            }
        )

    def config(self, name: str, **overrides: Any) -> str:
        (self.root / name).write_text(yaml.safe_dump({**SMALL_CONFIG, **overrides}))
        return name

    def run(
        self, *args: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args),
            cwd=self.root,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def train(self, config: str, *extra: str, **kwargs: Any) -> subprocess.CompletedProcess:
        return self.run(sys.executable, str(ENTRY), "run", "--config", config, *extra, **kwargs)

    def snapshot(self) -> list[str]:
        artifacts = self.root / "artifacts"
        if not artifacts.exists():
            return []
        return sorted(str(p.relative_to(artifacts)) for p in artifacts.rglob("*"))


def run_id(result: subprocess.CompletedProcess) -> str:
    match = re.search(r"Workflow starting \(run-id (\d+)\)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    return match.group(1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    return Workdir(tmp_path_factory.mktemp("training-flow"))


@pytest.fixture(scope="module")
def trained(workdir: Workdir) -> dict[str, Any]:
    """One successful run of the small config (unsigned)."""
    result = workdir.train(workdir.config("small.yaml"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    latest = (workdir.root / "artifacts" / "iris_classifier" / "LATEST").read_text().strip()
    return {
        "result": result,
        "run_id": run_id(result),
        "version": latest,
        "directory": workdir.root / "artifacts" / "iris_classifier" / latest,
    }


def test_run_publishes_a_complete_artifact(trained):
    result = trained["result"]
    directory = trained["directory"]
    last = result.stdout.strip().splitlines()[-2:]
    assert last[0] == (
        f"Published iris_classifier version {trained['version']} "
        f"to artifacts/iris_classifier/{trained['version']}"
    )
    pattern = r"Best candidate: \w+; test metrics: accuracy=[01]\.\d{4}, f1_macro=[01]\.\d{4}"
    assert re.match(pattern, last[1]), last[1]
    assert "publishing unsigned (signing: null)" in result.stdout + result.stderr
    assert "executing TrainingWorkflow for user:mlops" in result.stderr  # no user name set

    metadata = json.loads((directory / "metadata.json").read_text())
    jsonschema.validate(metadata, json.loads(SCHEMA_PATH.read_text()))
    assert metadata["model_version"] == trained["version"]
    assert metadata["run"]["pathspec"] == f"TrainingWorkflow/{trained['run_id']}"
    assert metadata["signing"] is None
    assert metadata["model_file"]["sha256"] == sha256(directory / "model.joblib")
    accuracy = metadata["metrics"]["test"]["accuracy"]
    assert f"accuracy={accuracy:.4f}" in last[1]

    rows = pd.DataFrame([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], columns=IRIS_FEATURES)
    model = joblib.load(directory / "model.joblib")
    assert list(model.predict(rows)) == ["setosa", "virginica"]
    assert model.predict_proba(rows).shape == (2, 3)

    assert metadata["onnx"]["sha256"] == sha256(directory / "model.onnx")
    session = ort.InferenceSession(
        str(directory / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    labels, probabilities = session.run(None, {"input": rows.to_numpy(dtype=np.float32)})
    assert list(labels) == ["setosa", "virginica"]
    np.testing.assert_allclose(probabilities, model.predict_proba(rows), atol=1e-5)


def test_card_is_readable_offline(workdir, trained):
    out = workdir.root / "report.html"
    result = workdir.run(
        sys.executable, str(ENTRY), "card", "get", f"{trained['run_id']}/evaluate", str(out)
    )
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert not re.search(r"<script[^>]+src=[\"']https?://", html)  # no network needed
    # the card's content is embedded in the page as base64 JSON
    match = re.search(r'window\.__MF_DATA__\["[^"]+"\] = "([^"]+)"', html)
    assert match, "no embedded card data"
    content = base64.b64decode(match.group(1)).decode()
    for expected in ("Candidates", "logistic_regression", "knn", "Held-out test metrics"):
        assert expected in content
    assert "Confusion matrix" in content
    assert "data:image/png;base64," in content


def test_publish_from_the_finished_run(workdir, trained):
    pathspec = f"TrainingWorkflow/{trained['run_id']}"
    key = {"ARTIFACT_SIGNING_KEY": "ci-key:integration-secret"}
    command = [sys.executable, "-m", "src.training.publish_run", pathspec]
    result = workdir.run(*command, "--output-dir", "republished", extra_env=key)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Published iris_classifier version ")
    model_dir = workdir.root / "republished" / "iris_classifier"
    directory = model_dir / (model_dir / "LATEST").read_text().strip()
    # the run's own artifacts are published: same model bytes, same run, now signed
    assert sha256(directory / "model.joblib") == sha256(trained["directory"] / "model.joblib")
    metadata = json.loads((directory / "metadata.json").read_text())
    assert metadata["run"]["pathspec"] == pathspec
    assert metadata["signing"] == {"algorithm": "HMAC-SHA256", "key_id": "ci-key"}
    assert verify_signature(directory, {"ci-key": b"integration-secret"})

    again = workdir.run(*command, "--output-dir", "republished")
    assert again.returncode == 0
    assert "already published" in again.stdout
    assert len([p for p in model_dir.iterdir() if p.is_dir()]) == 1


def test_failed_quality_gate_publishes_nothing(workdir, trained):
    before = workdir.snapshot()
    config = workdir.config(
        "strict.yaml", model_name="iris_strict", quality_gate={"min_score": 1.01}
    )
    result = workdir.train(config)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"training failed: quality gate failed: test accuracy \d\.\d{4} < min_score 1\.01; "
        r"nothing was published",
        last,
    )
    assert workdir.snapshot() == before
    assert not (workdir.root / "artifacts" / "iris_strict").exists()

    # and the failed run cannot be published from the client either
    failed = workdir.run(sys.executable, "-m", "src.training.publish_run", run_id(result))
    assert failed.returncode == 1
    assert "did not finish successfully" in failed.stderr


def test_bad_config_exits_naming_the_field(workdir, trained):
    before = workdir.snapshot()
    bad = dict(SMALL_CONFIG, candidates=[{"name": "lr", "estimator": "LogisticRegression"}])
    bad["candidates"][0]["grid"] = {"C": [0.0]}
    (workdir.root / "bad.yaml").write_text(yaml.safe_dump(bad))
    result = workdir.train("bad.yaml")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("config error: candidates.0.grid.C: ")
    assert workdir.snapshot() == before


def test_missing_data_file_fails_the_run_cleanly(workdir, trained):
    before = workdir.snapshot()
    config = workdir.config(
        "csv.yaml",
        trainer="CSVTrainer",
        model_name="csv_model",
        task="classification",
        data={"source": "no-such-file.csv", "target": "label"},
    )
    result = workdir.train(config)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "training failed: data source error: data file not found: no-such-file.csv"
    )
    assert workdir.snapshot() == before


def test_publish_local_false_leaves_publishing_to_the_client(workdir, trained):
    before = workdir.snapshot()
    config = workdir.config(
        "remote.yaml",
        model_name="iris_remote",
        export_onnx=False,
        candidates=[SMALL_CONFIG["candidates"][1]],
    )
    result = workdir.train(config, "--publish_local", "false")
    assert result.returncode == 0, result.stderr[-2000:]
    rid = run_id(result)
    assert result.stdout.strip().splitlines()[-1] == (
        "publish_local is false: nothing was written. Publish this run with: "
        f"python -m src.training.publish_run TrainingWorkflow/{rid}"
    )
    assert workdir.snapshot() == before

    published = workdir.run(sys.executable, "-m", "src.training.publish_run", rid)
    assert published.returncode == 0, published.stderr
    model_dir = workdir.root / "artifacts" / "iris_remote"
    version = (model_dir / "LATEST").read_text().strip()
    metadata = json.loads((model_dir / version / "metadata.json").read_text())
    assert metadata["onnx"] == {
        "path": None,
        "reason": "disabled in the config (export_onnx: false)",
    }


def test_same_config_and_seed_reproduce_the_run(trained):
    """The workflow's metrics and data fingerprint equal an in-process run of the same config."""
    from src.training.config_loader import validate_config_data
    from src.training.steps import train_and_evaluate

    metadata = json.loads((trained["directory"] / "metadata.json").read_text())
    outcome = train_and_evaluate(validate_config_data(SMALL_CONFIG))
    assert outcome.loaded.fingerprint == metadata["data"]["fingerprint"]
    assert outcome.evaluation.test_metrics == metadata["metrics"]["test"]
    assert [r.summary()["cv_mean"] for r in outcome.results] == [
        c["cv_mean"] for c in metadata["metrics"]["candidates"]
    ]
    assert outcome.best.name == metadata["metrics"]["best_candidate"]
