"""publish_run against a run stored in an S3 datastore (moto on 127.0.0.1), as after a remote run.

The flow runs with ``--datastore=s3 --publish_local false``: its artifacts live only in the
local S3 server. ``python -m src.training.publish_run`` then publishes from there, from another
working directory, and the serving loader verifies the result like any other version.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from src.serve.artifact import load_artifact, resolve
from src.serve.signing import Keyring
from src.training.deploy.local_s3 import local_s3

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 600
TINY_CONFIG = {
    "trainer": "IrisClassifier",
    "model_name": "iris_remote",
    "cv_folds": 2,
    "candidates": [
        {"name": "lr", "estimator": "LogisticRegression", "params": {"max_iter": 500}},
        {"name": "knn", "estimator": "KNeighborsClassifier"},
    ],
    "export_onnx": False,
    "output_dir": "never-written",
}
KEY_ID, SECRET = "s3-test", "s3-publish-secret"


def run(argv, cwd, env):
    return subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_publish_run_reads_a_run_from_the_s3_datastore(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_CONFIG))
    metadata_dir = tmp_path / "metadata"
    drop = {"ARTIFACT_SIGNING_KEY", "ARTIFACT_SIGNING_KEY_FILE", "TRAINING_SUMMARY_FILE"}
    base = {k: v for k, v in os.environ.items() if k not in drop}
    base.update(
        METAFLOW_USER="tester",
        HOME=str(tmp_path),
        PYTHONPATH=str(REPO),
        ARTIFACT_SIGNING_LOCAL_FALLBACK="false",  # runs from the repo: never create its key
        # The run's metadata stays local (no metadata service here); its artifacts go to S3.
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(metadata_dir),
    )
    with local_s3() as s3:
        env = {**base, **s3.metaflow_env(), "METAFLOW_DEFAULT_DATASTORE": "s3"}
        trained = run(
            [
                "run_training_workflow.py",
                "run",
                "--config",
                str(config),
                "--publish_local",
                "false",
            ],
            REPO,
            env,
        )
        assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]
        pathspec = re.search(r"publish_run (TrainingWorkflow/\d+)", trained.stdout).group(1)
        stored = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix="metaflow/TrainingWorkflow/")
        assert stored["KeyCount"] > 0  # the run's artifacts are in the S3 datastore
        assert not (REPO / "never-written").exists()

        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        published = run(
            ["-m", "src.training.publish_run", pathspec, "--output-dir", "artifacts"],
            elsewhere,
            {**env, "ARTIFACT_SIGNING_KEY": f"{KEY_ID}:{SECRET}"},
        )
    assert published.returncode == 0, published.stderr[-2000:]
    assert published.stdout.startswith("Published iris_remote version ")

    # The service's loader: resolve LATEST, verify the signature and sha256, deserialise.
    artifacts = elsewhere / "artifacts"
    ref = resolve(artifacts, "iris_remote")
    loaded = load_artifact(ref, Keyring({KEY_ID: SECRET.encode()}, allow_unsigned=False))
    assert loaded.signed_by == KEY_ID
    assert loaded.metadata.run["pathspec"] == pathspec
    row = pd.DataFrame(
        [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]
    )
    assert loaded.pipeline.predict(row)[0] == "setosa"
