"""The trainer base class resolves the task and the target, once, from config + trainer."""

from __future__ import annotations

import pytest

from src.training.config import TrainingConfig, parse_config_data
from src.training.errors import ConfigError
from src.training.registry import get_trainer_class
from tests.unit_tests.training.conftest import IRIS_CONFIG, merge


def schema_only(**overrides: object) -> TrainingConfig:
    """A config checked field by field only (task and target not resolved yet)."""
    return parse_config_data(merge(IRIS_CONFIG, overrides))


def test_the_trainer_fills_in_task_and_target_and_resolving_again_changes_nothing():
    config = schema_only()
    assert config.task is None
    assert config.data.target is None
    iris = get_trainer_class("IrisClassifier")
    resolved = iris.resolve_config(config)
    assert (resolved.resolved_task, resolved.resolved_target) == ("classification", "species")
    assert iris.resolve_config(resolved) == resolved


def test_a_trainer_bound_to_an_unresolved_config_resolves_it():
    trainer = get_trainer_class("IrisClassifier")(schema_only())
    assert (trainer.task, trainer.target) == ("classification", "species")
    assert trainer.config.metric == "accuracy"


def test_unresolved_configs_say_so():
    config = schema_only()
    with pytest.raises(ConfigError, match="task: not resolved yet"):
        _ = config.resolved_task
    with pytest.raises(ConfigError, match=r"data\.target: not resolved yet"):
        _ = config.resolved_target


def test_the_config_wins_over_trainer_defaults_but_not_over_a_fixed_task():
    iris = get_trainer_class("IrisClassifier")
    renamed = iris.resolve_config(schema_only(data={"target": "label"}))
    assert renamed.resolved_target == "label"
    with pytest.raises(ConfigError, match="task: trainer IrisClassifier is always classification"):
        iris.resolve_config(schema_only(task="regression"))
    csv = get_trainer_class("CSVTrainer")
    with pytest.raises(ConfigError, match="task: trainer CSVTrainer needs task"):
        csv.resolve_config(schema_only(trainer="CSVTrainer"))


def _preprocess_steps(estimator: str) -> list[str]:
    from src.training.config import CandidateConfig
    from src.training.features import Feature, FeatureSpec

    spec = FeatureSpec((Feature("a", "number"), Feature("b", "number")))
    trainer = get_trainer_class("IrisClassifier")(schema_only())
    pipeline = trainer.build_pipeline(spec, CandidateConfig(name="c", estimator=estimator))
    return [type(step).__name__ for _, step in pipeline.named_steps["preprocess"].steps]


@pytest.mark.parametrize(
    ("estimator", "steps"),
    [
        ("RandomForestClassifier", ["SimpleImputer"]),
        ("sklearn.ensemble.GradientBoostingRegressor", ["SimpleImputer"]),
        ("LogisticRegression", ["SimpleImputer", "StandardScaler"]),
        ("KNeighborsClassifier", ["SimpleImputer", "StandardScaler"]),
    ],
)
def test_pipelines_scale_numbers_except_in_front_of_trees(estimator: str, steps: list[str]):
    assert _preprocess_steps(estimator) == steps
