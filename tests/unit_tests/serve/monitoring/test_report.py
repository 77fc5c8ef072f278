"""The offline report command (python -m src.serve.monitoring.report)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.serve.monitoring import ModelMonitor
from src.serve.monitoring.report import main
from tests.artifact_factory import IRIS_FEATURES
from tests.unit_tests.serve.monitoring.helpers import iris_traffic, write_metadata_dir

ROOT = Path(__file__).resolve().parents[4]


def production_csv(path: Path, n: int = 300, **kwargs) -> Path:
    rows, labels = iris_traffic(n, seed=21, **kwargs)
    frame = pd.DataFrame(rows, columns=IRIS_FEATURES)
    frame["prediction"] = labels
    frame.to_csv(path, index=False)
    return path


def test_cli_writes_a_self_contained_html_report_with_every_feature(iris_artifact, tmp_path):
    source = production_csv(tmp_path / "production.csv", shift={"petal_length": 3.0})
    output = tmp_path / "out" / "report.html"
    completed = subprocess.run(
        [sys.executable, "-m", "src.serve.monitoring.report",
         "--model-dir", str(iris_artifact.directory), "--input", str(source),
         "--output", str(output), "--json-output", str(tmp_path / "report.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "petal_length=" in completed.stdout
    assert "(drift)" in completed.stdout
    document = output.read_text()
    assert document.startswith("<!DOCTYPE html>")
    for name in IRIS_FEATURES:
        assert f'data-feature="{name}"' in document
    assert document.count('<svg class="histogram"') == len(IRIS_FEATURES) + 1  # + predictions
    assert 'id="psi-table"' in document
    assert 'id="quality-table"' in document
    assert "Content-Security-Policy" in document
    # self-contained: nothing fetched, no script
    assert "<script" not in document
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", document)
    analysis = json.loads((tmp_path / "report.json").read_text())
    assert analysis["drifted_features"] == ["petal_length"]
    assert analysis["prediction"]["status"] == "ok"


def test_latest_is_resolved_from_artifacts_dir(iris_artifact, tmp_path, capsys):
    source = production_csv(tmp_path / "p.csv")
    output = tmp_path / "r.html"
    code = main(
        ["--artifacts-dir", str(iris_artifact.root), "--model-name", iris_artifact.model_name,
         "--input", str(source), "--output", str(output)]
    )  # fmt: skip
    assert code == 0
    assert iris_artifact.model_version in output.read_text()
    assert "overall ok" in capsys.readouterr().out


def test_fail_on_drift_exits_1(iris_artifact, tmp_path):
    source = production_csv(tmp_path / "p.csv", shift={"sepal_length": 3.0})
    args = ["--model-dir", str(iris_artifact.directory), "--input", str(source),
            "--output", str(tmp_path / "r.html")]  # fmt: skip
    assert main([*args, "--fail-on-drift"]) == 1
    assert main(args) == 0


def test_an_exported_window_is_accepted(iris_artifact, tmp_path):
    monitor = ModelMonitor(iris_artifact.metadata, window=400)
    rows, labels = iris_traffic(400, seed=22, shift={"sepal_width": 3.0})
    monitor.observe_many(rows.tolist(), labels)
    window = tmp_path / "window.json"
    window.write_text(json.dumps(monitor.export_window()))
    output = tmp_path / "r.html"
    json_out = tmp_path / "r.json"
    assert main(["--model-dir", str(iris_artifact.directory), "--input", str(window),
                 "--output", str(output), "--json-output", str(json_out)]) == 0  # fmt: skip
    offline = json.loads(json_out.read_text())
    online = monitor.snapshot(max_age=0)
    assert offline["drifted_features"] == online["drifted_features"] == ["sepal_width"]
    for name in IRIS_FEATURES:
        assert offline["features"][name]["psi"] == online["features"][name]["psi"]


def test_records_json_and_missing_values(iris_artifact, tmp_path):
    records = [dict(zip(IRIS_FEATURES, [5.0, 3.0, 4.0, 1.0], strict=True)) for _ in range(10)]
    records[0]["sepal_length"] = None
    records[1]["sepal_width"] = "oops"
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"records": records}))
    json_out = tmp_path / "r.json"
    assert main(["--model-dir", str(iris_artifact.directory), "--input", str(path),
                 "--output", str(tmp_path / "r.html"), "--json-output", str(json_out),
                 "--min-samples", "5"]) == 0  # fmt: skip
    result = json.loads(json_out.read_text())
    assert result["features"]["sepal_length"]["data_quality"]["window"]["missing"] == 1
    assert result["features"]["sepal_width"]["data_quality"]["window"]["missing"] == 1
    assert any("sepal_width" in w for w in result["warnings"])
    assert "not numbers" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("sepal_length,sepal_width,petal_length,petal_width\n", "no data rows"),
        (
            "sepal_length,sepal_width,petal_width\n1,2,3\n",
            "lacks feature column(s) ['petal_length']",
        ),
    ],
)
def test_bad_csv_input_fails_clearly(iris_artifact, tmp_path, capsys, content, message):
    source = tmp_path / "bad.csv"
    source.write_text(content)
    output = tmp_path / "r.html"
    assert main(["--model-dir", str(iris_artifact.directory), "--input", str(source),
                 "--output", str(output)]) == 2  # fmt: skip
    assert message in capsys.readouterr().err
    assert not output.exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "cannot read metadata"),
        (lambda d: (d / "metadata.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "metadata.json").write_text("[]"), "JSON object"),
        (lambda d: (d / "metadata.json").write_text('{"task": "classification"}'),
         "lacks 'features'"),
    ],
)  # fmt: skip
def test_unreadable_metadata_fails_clearly(tmp_path, capsys, setup, message):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    setup(model_dir)
    source = production_csv(tmp_path / "p.csv", n=10)
    assert main(["--model-dir", str(model_dir), "--input", str(source),
                 "--output", str(tmp_path / "r.html")]) == 2  # fmt: skip
    assert message in capsys.readouterr().err


def test_missing_input_and_bad_latest_fail_clearly(iris_artifact, tmp_path, capsys):
    missing = str(tmp_path / "nope.csv")
    assert main(["--model-dir", str(iris_artifact.directory), "--input", missing,
                 "--output", str(tmp_path / "r.html")]) == 2  # fmt: skip
    assert "cannot read input" in capsys.readouterr().err
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "LATEST").write_text("../../etc\n")
    assert main(["--artifacts-dir", str(tmp_path), "--model-name", "m", "--input", "x.csv",
                 "--output", str(tmp_path / "r.html")]) == 2  # fmt: skip
    assert "invalid model version" in capsys.readouterr().err


def test_names_from_metadata_are_html_escaped(iris_metadata, tmp_path):
    hostile = '<img src=x onerror="alert(1)">'
    iris_metadata["features"][0]["name"] = hostile
    iris_metadata["reference"][hostile] = iris_metadata["reference"].pop("sepal_length")
    model_dir = write_metadata_dir(tmp_path / "model", iris_metadata)
    rows, _ = iris_traffic(50, seed=23)
    frame = pd.DataFrame(rows, columns=[hostile, *IRIS_FEATURES[1:]])
    frame.to_csv(tmp_path / "p.csv", index=False)
    assert main(["--model-dir", str(model_dir), "--input", str(tmp_path / "p.csv"),
                 "--output", str(tmp_path / "r.html")]) == 0  # fmt: skip
    document = (tmp_path / "r.html").read_text()
    assert hostile not in document
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in document


def test_categorical_features_and_regression_predictions(mixed_metadata, tmp_path):
    mixed_metadata["task"] = "regression"
    mixed_metadata["target"] = {"name": "y", "classes": None, "distribution": {
        "kind": "numeric", "count": 10, "missing": 0, "mean": 0.5, "std": 0.3, "min": 0.0,
        "max": 1.0, "quantiles": {}, "bin_edges": [i / 10 for i in range(11)],
        "bin_fractions": [0.1] * 10}}  # fmt: skip
    model_dir = write_metadata_dir(tmp_path / "model", mixed_metadata)
    rows, _ = iris_traffic(300, seed=24)
    frame = pd.DataFrame(rows, columns=IRIS_FEATURES)
    frame["color"] = np.random.default_rng(0).choice(["red", "green", "mauve"], 300)
    frame["prediction"] = np.random.default_rng(1).uniform(0, 1, 300)
    frame.to_csv(tmp_path / "p.csv", index=False)
    json_out = tmp_path / "r.json"
    source, html_out = str(tmp_path / "p.csv"), str(tmp_path / "r.html")
    assert main(["--model-dir", str(model_dir), "--input", source,
                 "--output", html_out, "--json-output", str(json_out)]) == 0  # fmt: skip
    result = json.loads(json_out.read_text())
    assert result["features"]["color"]["status"] == "drift"
    assert result["features"]["color"]["data_quality"]["window"]["unknown_category"] > 50
    assert result["prediction"]["status"] == "ok"
    document = (tmp_path / "r.html").read_text()
    assert "__unknown__" in document
    assert "Predicted values" in document
