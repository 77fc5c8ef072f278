"""The quality gate: the held-out test score must clear the configured bound to publish."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from src.training.config import TrainingConfig
from src.training.errors import QualityGateError


def gate_passes(value: float, min_score: float | None, max_score: float | None) -> bool:
    """True when ``value`` clears the bound that is set (NaN never does)."""
    if value != value:  # NaN
        return False
    if min_score is not None and value < min_score:
        return False
    return not (max_score is not None and value > max_score)


@dataclass(frozen=True)
class GateResult:
    """Outcome of the quality gate: verdict, one-line message and metadata detail."""

    passed: bool
    message: str
    detail: dict[str, Any] | None


def check_quality_gate(config: TrainingConfig, test_metrics: dict[str, Any]) -> GateResult:
    """Compare the held-out test score with the configured bound."""
    gate = config.quality_gate
    if gate is None:
        return GateResult(True, "no quality gate configured", None)
    metric = config.gate_metric
    value = float(test_metrics[metric])
    passed = gate_passes(value, gate.min_score, gate.max_score)
    if gate.min_score is not None:
        bound, relation = f"min_score {gate.min_score:g}", (">=" if passed else "<")
    else:
        bound, relation = f"max_score {gate.max_score:g}", ("<=" if passed else ">")
    detail = {
        "metric": metric,
        "value": value,
        "min_score": gate.min_score,
        "max_score": gate.max_score,
        "passed": passed,
    }
    return GateResult(passed, f"test {metric} {value:.4f} {relation} {bound}", detail)


def enforce_quality_gate(result: GateResult) -> GateResult:
    """The gate's verdict, computed once by `check_quality_gate` when the model was evaluated;
    `QualityGateError` when the model missed the bound."""
    if not result.passed:
        raise QualityGateError(f"{result.message}; nothing was published")
    return result
