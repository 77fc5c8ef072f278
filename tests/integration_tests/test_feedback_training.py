"""Back to training: live traffic and its feedback become a model, by config alone.

A real service logs 150 iris predictions, the true species arrive on POST /feedback, the
export command writes the labelled CSV, and the real TrainingWorkflow trains and publishes a
model from it with ``src/training/configs/iris_from_feedback.yaml`` (only ``data.source``
pointed at the CSV).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.artifact_factory import IRIS_FEATURES, build_iris_artifact, iris_frame
from tests.integration_tests.test_training_flow import Workdir
from tests.polling import wait_for
from tests.server_process import REPO_ROOT, ServerPool

pytestmark = pytest.mark.integration

API_KEY = "integration-api-key-0123"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CONFIG = REPO_ROOT / "src" / "training" / "configs" / "iris_from_feedback.yaml"


def test_labelled_csv_from_the_log_trains_a_model_through_the_workflow(tmp_path: Path) -> None:
    artifacts, log_dir = tmp_path / "serving-artifacts", tmp_path / "log"
    build_iris_artifact(artifacts)
    features, species = iris_frame()
    records = features[list(IRIS_FEATURES)].to_dict(orient="records")
    with ServerPool(
        tmp_path, API_KEYS=API_KEY, ALLOW_UNSIGNED="true", MODEL_POLL_SECONDS="0",
        PREDICTION_LOG_ENABLED="true", PREDICTION_LOG_DIR=str(log_dir),
    ) as pool:  # fmt: skip
        server = pool(artifacts, ready_path="/health")
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as http:
            body = {"request_id": "iris", "records": records}
            assert http.post("/predict/batch", json=body).status_code == 200
            items = [
                {"request_id": f"iris/{i}", "label": str(label)} for i, label in enumerate(species)
            ]

            def all_matched() -> bool:  # the writer indexes within ~50 ms
                answer = http.post("/feedback", json={"items": items}).json()
                return len(answer["matched"]) + len(answer["duplicates"]) == len(items)

            wait_for(all_matched, 30, "feedback joined")
        assert server.terminate() == 0

    labelled = tmp_path / "work" / "labelled.csv"
    export = subprocess.run(
        [sys.executable, "-m", "src.serve.predlog.export", "--log-dir", str(log_dir),
         "--model-name", "iris_classifier", "--output", str(labelled)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    assert "150 labelled rows of 150 logged predictions" in export.stdout
    with labelled.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [*IRIS_FEATURES, "species"]
    assert sorted(r["species"] for r in rows) == sorted(str(s) for s in species)  # the truth

    workdir = Workdir(tmp_path / "work")
    config = yaml.safe_load(CONFIG.read_text())
    assert config["data"]["source"] == "labelled.csv"  # the committed config, as is
    (workdir.root / "retrain.yaml").write_text(yaml.safe_dump(config))
    result = workdir.train("retrain.yaml", extra_env={"METAFLOW_USER": "mlops"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    published = workdir.root / "artifacts" / "iris_classifier"
    version = (published / "LATEST").read_text().strip()
    metadata = json.loads((published / version / "metadata.json").read_text())
    assert metadata["trainer_class"] == "CSVTrainer"
    assert [f["name"] for f in metadata["features"]] == list(IRIS_FEATURES)
    assert metadata["data"]["n_rows"] == 150
    assert metadata["metrics"]["test"]["accuracy"] >= 0.8
