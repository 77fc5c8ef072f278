"""ONNX export: parity on the held-out set, or publish without ONNX and record why."""

from __future__ import annotations

import jsonschema
import numpy as np
import onnxruntime as ort
import pandas as pd
from loguru import logger
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from src.training import onnx_export
from src.training.base import Trainer
from src.training.config import CandidateConfig
from src.training.features import FeatureSpec
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
    assert isinstance(info["opset"], int)
    assert info["parity"]["n_rows"] == 30
    assert info["parity"]["labels_equal"] is True
    assert info["parity"]["max_abs_prob_diff"] <= 1e-5
    assert info["outputs"] == ["label", "probabilities"]
    assert info["inputs"][0]["name"] == "input"
    assert info["inputs"][0]["shape"] == [None, 4]
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
    assert result.info["reason"].startswith("parity check failed: max probability difference")
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
    assert result.info["reason"].startswith("conversion failed: ")
    assert any("ONNX export skipped: conversion failed" in m for m in messages)  # never silent
    published = publish_outcome(outcome, tmp_path)
    jsonschema.validate(published.metadata, metadata_schema)
    assert published.metadata["onnx"] == {"path": None, "reason": result.info["reason"]}
    assert sorted(p.name for p in published.directory.iterdir()) == [
        "metadata.json",
        "model.joblib",
    ]


def test_export_never_raises_for_a_bad_model():
    spec = FeatureSpec(())
    result = export_onnx(object(), spec, pd.DataFrame(), "classification")
    assert result.model_bytes is None
    assert result.info["reason"].startswith("conversion failed")


def test_trainer_base_is_abstract():
    assert Trainer.__abstractmethods__ == frozenset({"load_data"})
