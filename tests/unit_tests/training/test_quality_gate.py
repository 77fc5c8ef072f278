"""The quality gate compares the held-out score with the configured bound."""

from __future__ import annotations

import math

import pytest

from src.training.errors import QualityGateError
from src.training.quality_gate import check_quality_gate, enforce_quality_gate, gate_passes


def test_min_and_max_bounds():
    assert gate_passes(0.9, 0.9, None)
    assert not gate_passes(0.89, 0.9, None)
    assert gate_passes(10.0, None, 10.0)
    assert not gate_passes(10.1, None, 10.0)
    assert not gate_passes(math.nan, 0.0, None)


def test_failure_names_metric_value_and_bound(make_config):
    config = make_config(quality_gate={"min_score": 0.99})
    with pytest.raises(QualityGateError) as info:
        enforce_quality_gate(check_quality_gate(config, {"accuracy": 0.9}))
    assert str(info.value) == (
        "quality gate failed: test accuracy 0.9000 < min_score 0.99; nothing was published"
    )


def test_gate_uses_its_own_metric(make_config):
    config = make_config(quality_gate={"metric": "f1_macro", "min_score": 0.5})
    result = check_quality_gate(config, {"accuracy": 0.1, "f1_macro": 0.6})
    assert result.passed
    assert result.detail == {
        "metric": "f1_macro",
        "value": 0.6,
        "min_score": 0.5,
        "max_score": None,
        "passed": True,
    }


def test_max_score_for_error_metrics(make_config):
    config = make_config(
        trainer="DiabetesRegressor",
        candidates=[{"name": "ridge", "estimator": "Ridge"}],
        quality_gate={"metric": "rmse", "min_score": None, "max_score": 50.0},
    )
    assert not check_quality_gate(config, {"rmse": 55.0}).passed
    assert enforce_quality_gate(check_quality_gate(config, {"rmse": 45.0})).message == (
        "test rmse 45.0000 <= max_score 50"
    )


def test_no_gate_always_passes(make_config):
    config = make_config()
    config = config.model_copy(update={"quality_gate": None})
    assert check_quality_gate(config, {"accuracy": 0.0}).passed


def test_the_verdict_is_computed_once_at_evaluation_and_enforced_as_recorded(make_config):
    from src.training.steps import train_and_evaluate

    config = make_config(export_onnx=False, quality_gate={"min_score": 1.01})
    evaluation = train_and_evaluate(config).evaluation
    assert not evaluation.gate.passed
    assert evaluation.draft_metadata["metrics"]["quality_gate"] == evaluation.gate.detail
    with pytest.raises(QualityGateError, match=r"min_score 1\.01"):
        enforce_quality_gate(evaluation.gate)
