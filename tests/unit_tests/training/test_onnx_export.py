"""ONNX export: parity on the held-out set, or publish without ONNX and record why."""

from __future__ import annotations

import jsonschema
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from loguru import logger
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from src.training import onnx_export
from src.training.base import Trainer
from src.training.config import CandidateConfig
from src.training.features import MISSING_CATEGORY, Feature, FeatureSpec, build_preprocessor
from src.training.onnx_export import export_onnx, onnx_feeds
from src.training.registry import register_workflow, unregister_workflow
from src.training.steps import train_and_evaluate
from src.training.trainers.iris import IrisClassifier
from tests.unit_tests.training.conftest import publish_outcome


def test_classifier_parity_and_layout(make_config):
    outcome = train_and_evaluate(make_config())
    result = outcome.evaluation.onnx
    assert result.converted
    info = result.info
    assert info["path"] == "model.onnx"
    assert info["reason"] is None
    assert info["converter"].startswith("skl2onnx ")
    assert info["precision"] == "float32"
    assert "attempts" not in info
    assert isinstance(info["opset"], int)
    assert info["parity"]["n_rows"] == 30
    assert info["parity"]["labels_equal"] is True
    assert info["parity"]["max_abs_prob_diff"] <= 1e-5
    assert info["outputs"] == ["label", "probabilities"]
    assert info["inputs"][0]["name"] == "input"
    assert info["inputs"][0]["shape"] == [None, 4]
    assert info["inputs"][0]["type"] == "float32"
    assert set(result.versions) == {"skl2onnx", "onnx"}

    # the documented layout really drives the model: labels + a probability tensor (no ZipMap)
    session = ort.InferenceSession(result.model_bytes, providers=["CPUExecutionProvider"])
    x_test = outcome.split.X_test
    labels, probabilities = session.run(None, onnx_feeds(x_test, outcome.loaded.data.spec))
    model = outcome.best.model
    assert list(labels) == list(model.predict(x_test))
    np.testing.assert_allclose(probabilities, model.predict_proba(x_test), atol=1e-5)


def test_failed_parity_is_recorded_not_published(make_config, monkeypatch, tmp_path):
    monkeypatch.setattr(onnx_export, "PARITY_TOLERANCE", 0.0)
    outcome = train_and_evaluate(make_config())
    result = outcome.evaluation.onnx
    assert not result.converted
    assert result.info["path"] is None
    # float32 fails parity first; a double graph gets the same (here impossible) check
    assert result.info["reason"].startswith(
        "float32: parity check failed: max probability difference"
    )
    assert "; float64: parity check failed: max probability difference" in result.info["reason"]
    assert [a["precision"] for a in result.info["attempts"]] == ["float32", "float64"]
    assert result.info["parity"] == result.info["attempts"][0]["parity"]
    published = publish_outcome(outcome, tmp_path)
    assert not (published.directory / "model.onnx").exists()
    assert published.metadata["onnx"]["reason"] == result.info["reason"]


def test_disabled_export_says_so(make_config):
    outcome = train_and_evaluate(make_config(export_onnx=False))
    assert outcome.evaluation.onnx.info == {
        "path": None,
        "reason": "disabled in the config (export_onnx: false)",
    }


class _LogIris(IrisClassifier):
    """A trainer whose pipeline skl2onnx cannot convert (a FunctionTransformer step)."""

    def build_pipeline(self, spec: FeatureSpec, candidate: CandidateConfig) -> Pipeline:
        pipeline = super().build_pipeline(spec, candidate)
        return Pipeline([("log", FunctionTransformer(np.log1p)), *pipeline.steps])


def test_unconvertible_pipeline_is_published_without_onnx(make_config, tmp_path, metadata_schema):
    register_workflow(_LogIris, name="LogIris")
    messages: list[str] = []
    sink = logger.add(messages.append, level="WARNING")
    try:
        outcome = train_and_evaluate(make_config(trainer="LogIris"))
    finally:
        logger.remove(sink)
        unregister_workflow("LogIris")
    result = outcome.evaluation.onnx
    assert result.model_bytes is None
    assert result.info["reason"].startswith("float32: conversion failed: ")
    assert "; float64: conversion failed: " in result.info["reason"]
    assert any("ONNX export skipped: float32: conversion failed" in m for m in messages)
    published = publish_outcome(outcome, tmp_path)
    jsonschema.validate(published.metadata, metadata_schema)
    assert published.metadata["onnx"]["path"] is None
    assert published.metadata["onnx"]["reason"] == result.info["reason"]
    candidates = published.metadata["metrics"]["candidates"]
    assert all(c["onnx"]["precision"] is None for c in candidates)
    assert all(c["onnx"]["reason"].startswith("float32: conversion failed") for c in candidates)
    assert sorted(p.name for p in published.directory.iterdir()) == [
        "metadata.json",
        "model.joblib",
    ]


def test_export_never_raises_for_a_bad_model():
    spec = FeatureSpec(())
    result = export_onnx(object(), spec, pd.DataFrame(), "classification")
    assert result.model_bytes is None
    assert result.info["reason"].startswith("float32: conversion failed")


def test_trainer_base_is_abstract():
    assert Trainer.__abstractmethods__ == frozenset({"load_data"})


# --- precision: float32 first, then a double graph --------------------------------------------

TIMESTAMPS = FeatureSpec((Feature("seconds", "number"), Feature("noise", "number")))
TIMESTAMPS_MIXED = FeatureSpec((*TIMESTAMPS.features, Feature("site", "category")))


def _timestamp_table(rows: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    """Epoch seconds (about 1.7e9: float32 steps there are 128 s apart) whose last minutes
    matter, with gaps, a noise column and a category with missing values."""
    rng = np.random.default_rng(0)
    seconds = 1.7e9 + rng.uniform(0, 1000, rows)
    target = 3.0 * (seconds - 1.7e9) + rng.normal(0, 1, rows)
    seconds[::17] = np.nan
    frame = pd.DataFrame(
        {
            "seconds": seconds,
            "noise": rng.normal(size=rows),
            "site": rng.choice(["a", "b", MISSING_CATEGORY], rows),
        }
    )
    return frame, target


def _fit(spec: FeatureSpec, estimator: object, scale: bool, y: np.ndarray) -> Pipeline:
    frame, _ = _timestamp_table()
    pipeline = Pipeline(
        [("preprocess", build_preprocessor(spec, scale=scale)), ("model", estimator)]
    )
    return pipeline.fit(frame[spec.names], y)


@pytest.mark.parametrize("spec", [TIMESTAMPS, TIMESTAMPS_MIXED], ids=["numeric", "mixed"])
def test_a_double_graph_is_published_when_float32_fails_parity(spec: FeatureSpec) -> None:
    frame, target = _timestamp_table()
    model = _fit(spec, Ridge(), True, target)
    result = export_onnx(model, spec, frame[spec.names], "regression")
    assert result.converted
    info = result.info
    assert info["precision"] == "float64"
    assert info["parity"]["max_rel_error"] <= 1e-5
    assert info["attempts"][0]["precision"] == "float32"
    assert info["attempts"][0]["reason"].startswith("parity check failed: max relative error")
    assert {i["type"] for i in info["inputs"] if i["type"] != "string"} == {"float64"}

    # the graph takes doubles (NaN imputed inside it) and gives scikit-learn's values
    session = ort.InferenceSession(result.model_bytes, providers=["CPUExecutionProvider"])
    numeric = [i for i in session.get_inputs() if i.type != "tensor(string)"]
    assert {i.type for i in numeric} == {"tensor(double)"}
    feeds = onnx_feeds(frame[spec.names], spec, "float64")
    got = session.run(None, feeds)[0].ravel()
    np.testing.assert_allclose(got, model.predict(frame[spec.names]), rtol=1e-9)


def test_a_double_graph_for_a_classifier() -> None:
    frame, target = _timestamp_table()
    labels = np.where(target > np.median(target), "late", "early")
    model = _fit(TIMESTAMPS, LogisticRegression(), True, labels)
    result = export_onnx(model, TIMESTAMPS, frame[TIMESTAMPS.names], "classification")
    assert result.info["precision"] == "float64"
    assert result.info["parity"]["labels_equal"] is True
    assert result.info["parity"]["max_abs_prob_diff"] <= 1e-5
    assert result.info["attempts"][0]["parity"]["labels_equal"] is False


def test_an_unscaled_forest_is_exact_in_float32_where_a_scaled_one_fails_both() -> None:
    frame, target = _timestamp_table()
    forest = RandomForestRegressor(n_estimators=20, random_state=0)
    unscaled = export_onnx(
        _fit(TIMESTAMPS, forest, False, target), TIMESTAMPS, frame[TIMESTAMPS.names], "regression"
    )
    assert unscaled.info["precision"] == "float32"
    assert unscaled.info["parity"]["max_rel_error"] <= 1e-5
    scaled = export_onnx(
        _fit(TIMESTAMPS, forest, True, target), TIMESTAMPS, frame[TIMESTAMPS.names], "regression"
    )
    assert not scaled.converted
    reason = scaled.info["reason"]
    assert reason.startswith("float32: parity check failed: max relative error")
    # onnxruntime has no double-output kernel for the tree regressor
    assert "; float64: conversion failed: " in reason


def test_every_candidate_records_whether_it_compiles(make_config, tmp_path, metadata_schema):
    config = make_config(
        candidates=[
            {"name": "logistic_regression", "estimator": "LogisticRegression"},
            {
                "name": "forest",
                "estimator": "RandomForestClassifier",
                "params": {"n_estimators": 30},
            },
        ]
    )
    outcome = train_and_evaluate(config)
    published = publish_outcome(outcome, tmp_path)
    jsonschema.validate(published.metadata, metadata_schema)
    entries = {c["name"]: c["onnx"] for c in published.metadata["metrics"]["candidates"]}
    assert list(entries) == ["logistic_regression", "forest"]
    for entry in entries.values():
        assert (entry["precision"], entry["reason"]) == ("float32", None)
        assert entry["parity"]["max_abs_prob_diff"] <= 1e-5
    assert published.metadata["onnx"]["precision"] == "float32"


def test_metadata_without_precision_still_validates(make_config, tmp_path, metadata_schema):
    outcome = train_and_evaluate(make_config())
    metadata = publish_outcome(outcome, tmp_path).metadata
    del metadata["onnx"]["precision"]
    for candidate in metadata["metrics"]["candidates"]:
        del candidate["onnx"]
    jsonschema.validate(metadata, metadata_schema)
    metadata["onnx"]["precision"] = "float16"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(metadata, metadata_schema)
