"""Names of the metrics a config may select or gate on, their task and direction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class MetricSpec:
    """A metric: which task it belongs to, its scikit-learn scorer, and its direction."""

    name: str
    task: Task
    scorer: str
    higher_is_better: bool


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("accuracy", "classification", "accuracy", True),
        MetricSpec("balanced_accuracy", "classification", "balanced_accuracy", True),
        MetricSpec("f1_macro", "classification", "f1_macro", True),
        MetricSpec("rmse", "regression", "neg_root_mean_squared_error", False),
        MetricSpec("mae", "regression", "neg_mean_absolute_error", False),
        MetricSpec("r2", "regression", "r2", True),
    )
}
DEFAULT_METRIC: dict[str, str] = {"classification": "accuracy", "regression": "rmse"}


def metrics_for(task: str) -> list[str]:
    """Metric names valid for ``task``, in a stable order."""
    return [name for name, spec in METRICS.items() if spec.task == task]
