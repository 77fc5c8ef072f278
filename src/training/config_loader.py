"""Load a training config: YAML -> schema (`src.training.config`) -> the checks that need the
trainer and scikit-learn, with the trainer's task and target filled in.

`load_config` / `parse_config_text` / `validate_config_data` return a `TrainingConfig` that
every later step can use as is, or raise exactly one `ConfigError` naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from src.training.config import TrainingConfig, parse_config_data, parse_yaml, read_config_file
from src.training.errors import ConfigError
from src.training.estimators import check_hyperparameters, estimator_task, resolve_estimator
from src.training.metrics import METRICS, metrics_for
from src.training.registry import get_trainer_class


def check_semantics(config: TrainingConfig) -> TrainingConfig:
    """The config resolved by its trainer, with metrics and candidates checked against its task."""
    config = get_trainer_class(config.trainer).resolve_config(config)
    task = config.resolved_task
    for field, metric in (
        ("selection_metric", config.selection_metric),
        ("quality_gate.metric", config.quality_gate.metric if config.quality_gate else None),
    ):
        if metric is not None and METRICS[metric].task != task:
            raise ConfigError(
                field, f"{metric!r} is not a {task} metric; use one of {metrics_for(task)}"
            )
    gate = config.quality_gate
    if gate is not None:
        spec = METRICS[config.gate_metric]
        if spec.higher_is_better and gate.max_score is not None:
            raise ConfigError(
                "quality_gate.max_score", f"{spec.name} is higher-is-better; use min_score"
            )
        if not spec.higher_is_better and gate.min_score is not None:
            raise ConfigError(
                "quality_gate.min_score", f"{spec.name} is lower-is-better; use max_score"
            )

    for index, cand in enumerate(config.candidates):
        base = f"candidates.{index}"
        resolve_estimator(cand.estimator, f"{base}.estimator")
        kind = estimator_task(cand.estimator)
        if kind != task:
            raise ConfigError(
                f"{base}.estimator",
                f"{cand.estimator} is a {kind} estimator but the task is {task}",
            )
        check_hyperparameters(cand.estimator, cand.params, f"{base}.params")
        for key, options in cand.grid.items():
            for option in options:
                check_hyperparameters(cand.estimator, {key: option}, f"{base}.grid")
    return config


def validate_config_data(raw: Any) -> TrainingConfig:
    """Validate an already-parsed config mapping (schema + semantic checks)."""
    return check_semantics(parse_config_data(raw))


def parse_config_text(text: str, origin: str = "config") -> TrainingConfig:
    """Parse and validate YAML text; ``origin`` names the file in messages."""
    return validate_config_data(parse_yaml(text, origin))


def load_config(path: str | Path) -> TrainingConfig:
    """Read, parse and validate the config file at ``path``."""
    return parse_config_text(read_config_file(path), origin=str(path))
