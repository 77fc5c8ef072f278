"""The report command (python -m src.serve.monitoring.report; report/cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from src.serve.monitoring.report.cli import main
from tests.artifact_factory import IRIS_FEATURES
from tests.unit_tests.serve.monitoring.helpers import write_model_dir
from tests.unit_tests.serve.monitoring.report.helpers import production_csv

ROOT = Path(__file__).resolve().parents[5]


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
    lines = completed.stdout.splitlines()
    assert lines[0] == (
        f"report: 300 rows vs {iris_artifact.model_name} {iris_artifact.model_version}"
    )
    assert lines[1].startswith("report: overall drift; PSI sepal_length=")
    assert "petal_length=" in lines[1]
    assert "(drift)" in lines[1]
    assert lines[2].startswith("report: predictions PSI=")
    assert lines[3] == f"report: wrote {output}"
    document = output.read_text()
    assert document.startswith("<!DOCTYPE html>")
    for name in IRIS_FEATURES:
        assert f'data-feature="{name}"' in document
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


def test_a_pinned_version_is_read(iris_artifact, tmp_path):
    json_out = tmp_path / "r.json"
    assert main(
        ["--artifacts-dir", str(iris_artifact.root), "--model-name", iris_artifact.model_name,
         "--model-version", iris_artifact.model_version,
         "--input", str(production_csv(tmp_path / "p.csv")), "--output", str(tmp_path / "r.html"),
         "--json-output", str(json_out)]
    ) == 0  # fmt: skip
    assert json.loads(json_out.read_text())["model_version"] == iris_artifact.model_version


def test_thresholds_default_to_the_service_settings_and_can_be_set(iris_artifact, tmp_path):
    source = production_csv(tmp_path / "p.csv", n=150)
    json_out = tmp_path / "r.json"
    args = ["--model-dir", str(iris_artifact.directory), "--input", str(source),
            "--output", str(tmp_path / "r.html"), "--json-output", str(json_out)]  # fmt: skip
    assert main(args) == 0
    result = json.loads(json_out.read_text())
    assert result["thresholds"] == {"warn": 0.1, "drift": 0.25, "min_samples": 200,
                                    "epsilon": 0.0001}  # fmt: skip
    assert result["status"] == "insufficient_data"  # 150 rows < 200
    assert main([*args, "--warn", "0.2", "--drift", "0.3", "--min-samples", "100"]) == 0
    result = json.loads(json_out.read_text())
    assert result["thresholds"]["warn"] == 0.2
    assert result["thresholds"]["min_samples"] == 100
    assert result["status"] == "ok"


def test_fail_on_drift_exits_1(iris_artifact, tmp_path):
    source = production_csv(tmp_path / "p.csv", shift={"sepal_length": 3.0})
    args = ["--model-dir", str(iris_artifact.directory), "--input", str(source),
            "--output", str(tmp_path / "r.html")]  # fmt: skip
    assert main([*args, "--fail-on-drift"]) == 1
    assert main(args) == 0


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: (d / "metadata.json").unlink(), "metadata.json is missing"),
        (lambda d: (d / "metadata.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "metadata.json").write_text("[]"), "not a JSON object"),
        (lambda d: (d / "metadata.json").write_text('{"task": "classification"}'),
         "schema_version None is not supported"),
    ],
)  # fmt: skip
def test_unreadable_metadata_fails_clearly(iris_metadata, tmp_path, capsys, setup, message):
    model_dir = write_model_dir(tmp_path / "artifacts", iris_metadata)
    setup(model_dir)
    source = production_csv(tmp_path / "p.csv", n=10)
    output = tmp_path / "r.html"
    assert main(["--model-dir", str(model_dir), "--input", str(source),
                 "--output", str(output)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("report: error: ")
    assert message in err
    assert not output.exists()


def test_metadata_must_describe_the_directory_it_is_in(iris_metadata, tmp_path, capsys):
    model_dir = write_model_dir(tmp_path / "artifacts", iris_metadata)
    moved = model_dir.parent / "20990101T000000Z"
    model_dir.rename(moved)
    source = production_csv(tmp_path / "p.csv", n=10)
    assert main(["--model-dir", str(moved), "--input", str(source),
                 "--output", str(tmp_path / "r.html")]) == 2  # fmt: skip
    assert "not the directory it is in" in capsys.readouterr().err


def test_metadata_the_monitor_cannot_use_fails_clearly(iris_metadata, tmp_path, capsys):
    iris_metadata["reference"]["sepal_length"]["bin_edges"] = [1.0, 2.0]
    model_dir = write_model_dir(tmp_path / "artifacts", iris_metadata)
    source = production_csv(tmp_path / "p.csv", n=10)
    assert main(["--model-dir", str(model_dir), "--input", str(source),
                 "--output", str(tmp_path / "r.html")]) == 2  # fmt: skip
    assert "bin_edges" in capsys.readouterr().err


def test_missing_input_and_bad_model_location_fail_clearly(iris_artifact, tmp_path, capsys):
    missing = str(tmp_path / "nope.csv")
    assert main(["--model-dir", str(iris_artifact.directory), "--input", missing,
                 "--output", str(tmp_path / "r.html")]) == 2  # fmt: skip
    assert "cannot read input" in capsys.readouterr().err
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "LATEST").write_text("../../etc\n")
    assert main(["--artifacts-dir", str(tmp_path), "--model-name", "m", "--input", "x.csv",
                 "--output", str(tmp_path / "r.html")]) == 2  # fmt: skip
    assert "LATEST pointer of model 'm' is malformed" in capsys.readouterr().err
    assert main(["--model-dir", str(tmp_path / "m" / "nope"), "--input", "x.csv",
                 "--output", str(tmp_path / "r.html")]) == 2  # fmt: skip
    assert "pinned version 'nope' of model 'm' is not published" in capsys.readouterr().err


def test_artifacts_dir_needs_a_model_name(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--artifacts-dir", str(tmp_path), "--input", "x.csv", "--output", "r.html"])
    assert exited.value.code == 2
    assert "--artifacts-dir needs --model-name" in capsys.readouterr().err
