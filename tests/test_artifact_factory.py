"""The shared test factory writes artifacts that satisfy the documented schema."""

import json

import jsonschema
import pytest

from tests.artifact_factory import (
    SCHEMA_PATH,
    build_house_artifact,
    build_iris_artifact,
    build_regressor_artifact,
    sha256_file,
)


def test_factory_artifact_matches_schema(tmp_path):
    built = build_iris_artifact(tmp_path)
    schema = json.loads(SCHEMA_PATH.read_text())
    metadata = json.loads((built.directory / "metadata.json").read_text())
    jsonschema.validate(metadata, schema)
    assert metadata["model_file"]["sha256"] == sha256_file(built.directory / "model.joblib")
    assert (tmp_path / built.model_name / "LATEST").read_text().strip() == built.model_version


def test_schema_rejects_missing_fields(tmp_path):
    built = build_iris_artifact(tmp_path)
    metadata = dict(built.metadata)
    del metadata["model_file"]
    schema = json.loads(SCHEMA_PATH.read_text())
    with pytest.raises(jsonschema.ValidationError, match="model_file"):
        jsonschema.validate(metadata, schema)


def test_factory_onnx_artifact_matches_schema(tmp_path):
    built = build_iris_artifact(tmp_path, with_onnx=True)
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(built.metadata, schema)
    assert (built.directory / "model.onnx").stat().st_size > 0
    onnx_entry = built.metadata["onnx"]
    assert onnx_entry["sha256"] == sha256_file(built.directory / "model.onnx")
    assert onnx_entry["parity"]["labels_equal"] is True
    assert onnx_entry["parity"]["max_abs_prob_diff"] < 1e-5


def test_factory_house_artifact_matches_schema(tmp_path):
    built = build_house_artifact(tmp_path)
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(json.loads((built.directory / "metadata.json").read_text()), schema)
    assert built.metadata["task"] == "regression"
    assert [f["type"] for f in built.metadata["features"]] == ["number", "integer", "category"]
    assert (tmp_path / built.model_name / "LATEST").read_text().strip() == built.model_version


def test_factory_diabetes_regressor_artifact_matches_schema(tmp_path):
    built = build_regressor_artifact(tmp_path)
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(json.loads((built.directory / "metadata.json").read_text()), schema)
    assert built.metadata["task"] == "regression"
    assert (tmp_path / built.model_name / "LATEST").read_text().strip() == built.model_version
