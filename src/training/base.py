"""The abstract trainer: what a model type defines, in plain Python + scikit-learn.

A trainer loads its data, validates it into a typed feature spec, builds candidate pipelines
(preprocessing + estimator in one scikit-learn ``Pipeline``), splits, cross-validates and
evaluates. The Metaflow workflow only calls these methods; trainers never import Metaflow.

To add a model type, subclass `Trainer`, implement `load_data`, decorate the class with
``@register_workflow`` and point a config at it (see docs/training.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from src.training.config import CandidateConfig, TrainingConfig
from src.training.data_sources import read_csv_source
from src.training.data_validation import ValidatedData, validate_table
from src.training.errors import ConfigError
from src.training.estimators import build_estimator, scales_numeric_features
from src.training.evaluation import evaluate_model
from src.training.features import FeatureSpec, build_preprocessor
from src.training.metrics import Task


class Trainer(ABC):
    """Base class of every trainer.

    Class attributes a subclass may set:

    - ``fixed_task``: ``"classification"``/``"regression"`` when the trainer always does
      one; ``None`` lets the config's ``task`` decide.
    - ``default_target``: the target column when the config does not name one.
    - ``builtin_source``: a label for the trainer's built-in data (e.g. ``"sklearn:iris"``);
      ``None`` means the config must give ``data.source``.
    """

    fixed_task: ClassVar[Task | None] = None
    default_target: ClassVar[str | None] = None
    builtin_source: ClassVar[str | None] = None
    registered_name: ClassVar[str] = ""

    def __init__(self, config: TrainingConfig) -> None:
        self.config = self.resolve_config(config)
        #: the task this run does and the target column, as resolved from config + trainer
        self.task: Task = self.config.resolved_task
        self.target: str = self.config.resolved_target

    @classmethod
    def resolve_config(cls, config: TrainingConfig) -> TrainingConfig:
        """``config`` with this trainer's task and target filled in (the one place they are
        resolved); `ConfigError` when neither the config nor the trainer gives one, or the
        config contradicts the trainer. Resolving a resolved config changes nothing."""
        name = config.trainer
        if cls.fixed_task is not None and config.task not in (None, cls.fixed_task):
            raise ConfigError(
                "task", f"trainer {name} is always {cls.fixed_task}, not {config.task}"
            )
        task = config.task or cls.fixed_task
        if task is None:
            raise ConfigError("task", f"trainer {name} needs task: classification or regression")
        if config.data.source is None and cls.builtin_source is None:
            raise ConfigError("data.source", f"trainer {name} needs a CSV path or http(s) URL here")
        target = config.data.target or cls.default_target
        if target is None:
            raise ConfigError("data.target", f"trainer {name} needs the target column")
        data = config.data.model_copy(update={"target": target})
        return config.model_copy(update={"task": task, "data": data})

    # -- data -------------------------------------------------------------------------------
    @property
    def source_label(self) -> str:
        """Where the data comes from, for metadata (path, URL or built-in label)."""
        return self.config.data.source or self.builtin_source or "builtin"

    def read_source(self) -> pd.DataFrame:
        """Read the CSV named by ``data.source`` (local path or http(s) URL)."""
        source = self.config.data.source
        if source is None:
            raise ConfigError("data.source", f"{type(self).__name__} needs a CSV path or URL")
        return read_csv_source(source, timeout=self.config.data.timeout_seconds)

    @abstractmethod
    def load_data(self) -> pd.DataFrame:
        """Return the raw table: feature columns plus the target column."""

    def validate_data(self, frame: pd.DataFrame) -> ValidatedData:
        """Validate and clean the raw table; raises `DataValidationError` naming the column."""
        data = self.config.data
        return validate_table(
            frame,
            target=self.target,
            task=self.task,
            test_size=self.config.test_size,
            cv_folds=self.config.cv_folds,
            features=data.features,
            numeric=data.numeric,
            categorical=data.categorical,
        )

    def split(self, data: ValidatedData) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
        """Train/test split (stratified for classification), seeded by ``random_seed``."""
        stratify = data.y if self.task == "classification" else None
        X_train, X_test, y_train, y_test = train_test_split(  # noqa: N806
            data.X,
            data.y,
            test_size=self.config.test_size,
            random_state=self.config.random_seed,
            stratify=stratify,
        )
        return X_train, X_test, y_train, y_test

    # -- models -----------------------------------------------------------------------------
    def build_estimator(self, candidate: CandidateConfig) -> BaseEstimator:
        """The candidate's estimator with its fixed params, seeded by ``random_seed``."""
        return build_estimator(candidate.estimator, candidate.params, self.config.random_seed)

    def build_pipeline(self, spec: FeatureSpec, candidate: CandidateConfig) -> Pipeline:
        """Preprocessing + estimator in one Pipeline (steps ``preprocess`` and ``model``);
        the preprocessing depends on the estimator family (`scales_numeric_features`)."""
        scale = scales_numeric_features(candidate.estimator)
        return Pipeline(
            [
                ("preprocess", build_preprocessor(spec, scale=scale)),
                ("model", self.build_estimator(candidate)),
            ]
        )

    def cv_splitter(self) -> KFold | StratifiedKFold:
        """Shuffled, seeded K-fold (stratified for classification)."""
        cls = StratifiedKFold if self.task == "classification" else KFold
        return cls(
            n_splits=self.config.cv_folds, shuffle=True, random_state=self.config.random_seed
        )

    def evaluate(self, model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:  # noqa: N803
        """Held-out metrics of a fitted pipeline."""
        return evaluate_model(model, X, y, self.task)
