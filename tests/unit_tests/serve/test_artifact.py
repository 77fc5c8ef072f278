"""Artifact resolution and verification: refuse anything that cannot be trusted or honoured."""

from __future__ import annotations

import io
from pathlib import Path
from unittest import mock

import joblib
import numpy as np
import pytest
import sklearn

from src.serve.artifact import ArtifactRef, load_artifact, read_metadata, resolve
from src.serve.errors import (
    ArtifactNotFoundError,
    IncompatibleArtifactError,
    IntegrityError,
    InvalidArtifactError,
    ModelLoadError,
)
from tests.artifact_factory import (
    BuiltArtifact,
    build_iris_artifact,
    new_version,
    replace_model,
    rewrite_metadata,
)


def _ref(built: BuiltArtifact) -> ArtifactRef:
    return ArtifactRef(built.model_name, built.model_version, built.directory)


# --- resolve ------------------------------------------------------------------------------------


def test_resolve_follows_latest(artifacts: Path) -> None:
    old = build_iris_artifact(artifacts, model_version=new_version(-10))
    build_iris_artifact(artifacts, model_version=new_version(), set_latest=False)
    (artifacts / "iris_classifier" / "LATEST").write_text(old.model_version + "\n")
    assert resolve(artifacts, "iris_classifier").version == old.model_version


def test_resolve_honours_a_pin(artifacts: Path) -> None:
    pinned = build_iris_artifact(artifacts, model_version=new_version(-10))
    build_iris_artifact(artifacts)
    ref = resolve(artifacts, "iris_classifier", pinned.model_version)
    assert ref.version == pinned.model_version
    assert ref.directory == pinned.directory


def test_unknown_pin_is_not_found(artifacts: Path, iris: BuiltArtifact) -> None:
    with pytest.raises(ArtifactNotFoundError, match="pinned version '20200101T000000000000Z'"):
        resolve(artifacts, "iris_classifier", "20200101T000000000000Z")


def test_nothing_published_is_not_found(artifacts: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match="no model 'iris_classifier' is published"):
        resolve(artifacts, "iris_classifier")


def test_latest_pointing_nowhere_is_not_found(artifacts: Path, iris: BuiltArtifact) -> None:
    (artifacts / "iris_classifier" / "LATEST").write_text("20990101T000000000000Z\n")
    with pytest.raises(ArtifactNotFoundError, match="which does not exist"):
        resolve(artifacts, "iris_classifier")


def test_latest_with_a_path_is_refused(artifacts: Path, iris: BuiltArtifact) -> None:
    (artifacts / "iris_classifier" / "LATEST").write_text("../../etc\n")
    with pytest.raises(ArtifactNotFoundError, match="malformed"):
        resolve(artifacts, "iris_classifier")


def test_without_latest_the_newest_complete_version_is_used_and_dot_dirs_ignored(
    artifacts: Path,
) -> None:
    older = build_iris_artifact(artifacts, model_version=new_version(-20), set_latest=False)
    model_dir = artifacts / "iris_classifier"
    (model_dir / ".tmp-abc123").mkdir()  # an in-progress publish sorts after digits
    (model_dir / ".tmp-abc123" / "metadata.json").write_text("{}")
    (model_dir / "99999999T999999999999Z").mkdir()  # incomplete: no metadata
    assert resolve(artifacts, "iris_classifier").version == older.model_version


# --- metadata and compatibility ----------------------------------------------------------------


def test_valid_artifact_loads(iris: BuiltArtifact) -> None:
    loaded = load_artifact(_ref(iris))
    assert loaded.metadata.feature_names == (
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    )
    assert list(loaded.pipeline.classes_) == ["setosa", "versicolor", "virginica"]


def test_unknown_schema_version_is_refused(artifacts: Path) -> None:
    built = build_iris_artifact(artifacts, metadata_overrides={"schema_version": 2})
    with pytest.raises(IncompatibleArtifactError, match="schema_version 2 is not supported"):
        load_artifact(_ref(built))


def test_boolean_schema_version_is_refused(artifacts: Path) -> None:
    built = build_iris_artifact(artifacts, metadata_overrides={"schema_version": True})
    with pytest.raises(IncompatibleArtifactError):
        load_artifact(_ref(built))


def test_other_sklearn_minor_is_refused(artifacts: Path, iris: BuiltArtifact) -> None:
    major, minor = sklearn.__version__.split(".")[:2]
    other = f"{major}.{int(minor) + 1}.0"
    versions = dict(iris.metadata["versions"], **{"scikit-learn": other})
    built = build_iris_artifact(artifacts, metadata_overrides={"versions": versions})
    with pytest.raises(IncompatibleArtifactError) as info:
        load_artifact(_ref(built))
    assert f"scikit-learn {other}" in info.value.message
    assert "major.minor must match" in info.value.message


@pytest.mark.parametrize(("library", "version"), [("numpy", "1.26.4"), ("python", "2.7.18")])
def test_other_numpy_or_python_major_is_refused(
    artifacts: Path, iris: BuiltArtifact, library: str, version: str
) -> None:
    versions = dict(iris.metadata["versions"], **{library: version})
    built = build_iris_artifact(artifacts, metadata_overrides={"versions": versions})
    with pytest.raises(IncompatibleArtifactError, match=f"{library} {version}"):
        load_artifact(_ref(built))


def test_minor_numpy_drift_is_a_warning_not_a_refusal(artifacts: Path, iris: BuiltArtifact) -> None:
    major = np.__version__.split(".")[0]
    versions = dict(iris.metadata["versions"], numpy=f"{major}.0.0")
    built = build_iris_artifact(artifacts, metadata_overrides={"versions": versions})
    loaded = load_artifact(_ref(built))
    assert any("numpy" in w for w in loaded.warnings)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features": []}, "features"),
        ({"task": "clustering"}, "task"),
        ({"model_file": {"path": "other.pkl", "sha256": "0" * 64, "size_bytes": 1}}, "model_file"),
        (
            {
                "features": [
                    {"name": "a", "type": "number", "categories": None, "allow_unknown": False}
                ]
                * 2
            },
            "unique",
        ),
        (
            {
                "features": [
                    {
                        "name": "request_id",
                        "type": "number",
                        "categories": None,
                        "allow_unknown": False,
                    }
                ]
            },
            "reserved",
        ),
    ],
)
def test_invalid_metadata_is_refused(
    iris: BuiltArtifact, change: dict[str, object], message: str
) -> None:
    rewrite_metadata(iris.directory, **change)
    with pytest.raises(InvalidArtifactError, match=message):
        read_metadata(_ref(iris))


def test_missing_metadata_is_refused(iris: BuiltArtifact) -> None:
    (iris.directory / "metadata.json").unlink()
    with pytest.raises(InvalidArtifactError, match=r"metadata\.json is missing"):
        load_artifact(_ref(iris))


def test_metadata_that_is_not_json_is_refused(iris: BuiltArtifact) -> None:
    (iris.directory / "metadata.json").write_text("{not json")
    with pytest.raises(InvalidArtifactError, match="not valid JSON"):
        load_artifact(_ref(iris))


def test_metadata_of_another_version_is_refused(iris: BuiltArtifact) -> None:
    rewrite_metadata(iris.directory, model_version="20000101T000000000000Z")
    with pytest.raises(InvalidArtifactError, match="not the directory it is in"):
        load_artifact(_ref(iris))


# --- integrity ----------------------------------------------------------------------------------


def test_sha256_mismatch_is_refused_before_deserialising(iris: BuiltArtifact) -> None:
    model = iris.directory / "model.joblib"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte
    model.write_bytes(bytes(data))
    with (
        mock.patch.object(joblib, "load") as load,
        pytest.raises(IntegrityError, match=r"sha256 of model\.joblib does not match"),
    ):
        load_artifact(_ref(iris))
    load.assert_not_called()


def test_truncated_model_is_refused(iris: BuiltArtifact) -> None:
    model = iris.directory / "model.joblib"
    model.write_bytes(model.read_bytes()[:100])
    with pytest.raises(IntegrityError, match="truncated or replaced"):
        load_artifact(_ref(iris))


def test_missing_model_file_is_refused(iris: BuiltArtifact) -> None:
    (iris.directory / "model.joblib").unlink()
    with pytest.raises(InvalidArtifactError, match=r"model\.joblib is missing"):
        load_artifact(_ref(iris))


def _replace_model(built: BuiltArtifact, obj: object) -> None:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    replace_model(built.directory, buffer.getvalue())


def test_object_that_is_not_an_estimator_is_refused(iris: BuiltArtifact) -> None:
    _replace_model(iris, {"not": "a model"})
    with pytest.raises(IncompatibleArtifactError, match="does not hold a scikit-learn estimator"):
        load_artifact(_ref(iris))


def test_classes_that_differ_from_metadata_are_refused(iris: BuiltArtifact) -> None:
    rewrite_metadata(
        iris.directory,
        target=dict(iris.metadata["target"], classes=["setosa", "versicolor", "other"]),
    )
    with pytest.raises(IncompatibleArtifactError, match="classes differ"):
        load_artifact(_ref(iris))


def test_correct_digest_of_garbage_is_a_load_error(iris: BuiltArtifact) -> None:
    replace_model(iris.directory, b"this is not a pickle at all")
    with pytest.raises(ModelLoadError, match="could not be deserialised"):
        load_artifact(_ref(iris))
