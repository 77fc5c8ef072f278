"""The training config schema: the YAML file's fields, validated by pydantic one by one.

Checks that need the trainer or scikit-learn, and filling in the trainer's task and target,
happen in `src.training.config_loader`, whose `load_config` / `parse_config_text` are what
callers use. Every problem is exactly one `ConfigError` that names the field, e.g.
``config error: candidates.0.grid.C: ...``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from src.artifact_contract.aliases import ALIAS_NAME_RE
from src.artifact_contract.layout import MODEL_NAME_PATTERN
from src.training.errors import ConfigError
from src.training.metrics import DEFAULT_METRIC, Task

DEFAULT_CONFIG_PATH = "src/training/config.yaml"
MetricName = Literal["accuracy", "balanced_accuracy", "f1_macro", "rmse", "mae", "r2"]


class _Strict(BaseModel):
    """Base model: unknown keys are errors, values are not silently coerced into lists."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique(values: list[str] | None, what: str) -> list[str] | None:
    if values is None:
        return None
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is listed twice")
        seen.add(value)
    return values


class DataConfig(_Strict):
    """Where the data comes from and which columns to use."""

    source: str | None = Field(
        default=None,
        description="CSV path or http(s) URL; null = the trainer's built-in data",
    )
    target: str | None = Field(default=None, min_length=1, description="target column")
    features: list[str] | None = Field(default=None, min_length=1)
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("must not be empty (use null for the trainer's built-in data)")
        scheme = urlparse(value).scheme.lower()
        if "://" in value and scheme not in ("http", "https"):
            raise ValueError(f"only local paths and http(s) URLs are supported, not {scheme}://")
        return value

    @field_validator("features", "numeric", "categorical")
    @classmethod
    def _check_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not name for name in value):
            raise ValueError("column names must not be empty")
        return _unique(value, "column")

    @model_validator(mode="after")
    def _check_overlap(self) -> DataConfig:
        both = set(self.numeric or []) & set(self.categorical or [])
        if both:
            raise ValueError(f"columns listed as both numeric and categorical: {sorted(both)}")
        if self.target and self.target in (self.features or []):
            raise ValueError(f"target column {self.target!r} is also listed in features")
        return self


class CandidateConfig(_Strict):
    """One candidate model: an allow-listed estimator, fixed params and a search grid."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    estimator: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("grid")
    @classmethod
    def _non_empty_lists(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, options in value.items():
            if not options:
                raise ValueError(f"grid {key!r} has no values; give at least one")
        return value

    @model_validator(mode="after")
    def _no_overlap(self) -> CandidateConfig:
        both = set(self.params) & set(self.grid)
        if both:
            raise ValueError(f"{sorted(both)} set in both params and grid; keep one")
        return self

    def search_size(self) -> int:
        """How many hyperparameter combinations the grid holds."""
        size = 1
        for options in self.grid.values():
            size *= len(options)
        return size


class QualityGateConfig(_Strict):
    """Minimum (or, for error metrics, maximum) held-out test score required to publish."""

    metric: MetricName | None = None
    min_score: float | None = None
    max_score: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> QualityGateConfig:
        if (self.min_score is None) == (self.max_score is None):
            raise ValueError("set exactly one of min_score or max_score")
        return self


class TrainingConfig(_Strict):
    """The whole config file (see docs/training.md for every field)."""

    trainer: str = Field(min_length=1)
    model_name: str = Field(pattern=MODEL_NAME_PATTERN, max_length=100)
    task: Task | None = None
    data: DataConfig = Field(default_factory=DataConfig)
    test_size: float = Field(default=0.2, gt=0, lt=1)
    random_seed: int = Field(default=42, ge=0, le=2**32 - 1)
    cv_folds: int = Field(default=5, ge=2, le=20)
    candidates: list[CandidateConfig] = Field(min_length=1)
    selection_metric: MetricName | None = None
    quality_gate: QualityGateConfig | None = None
    output_dir: str = Field(default="artifacts", min_length=1)
    export_onnx: bool = True
    #: also point this alias (e.g. ``challenger``) at the published version
    publish_alias: str | None = Field(default=None, pattern=ALIAS_NAME_RE.pattern)

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, value: list[CandidateConfig]) -> list[CandidateConfig]:
        _unique([c.name for c in value], "candidate name")
        return value

    def candidate(self, name: str) -> CandidateConfig:
        """The candidate called ``name``."""
        for cand in self.candidates:
            if cand.name == name:
                return cand
        raise KeyError(name)

    @property
    def resolved_task(self) -> Task:
        """The task, once ``Trainer.resolve_config`` filled it in from the trainer."""
        if self.task is None:
            raise ConfigError("task", "not resolved yet (call load_config)")
        return self.task

    @property
    def resolved_target(self) -> str:
        """The target column, once ``Trainer.resolve_config`` filled it in from the trainer."""
        if self.data.target is None:
            raise ConfigError("data.target", "not resolved yet (call load_config)")
        return self.data.target

    @property
    def metric(self) -> str:
        """The selection metric: the configured one, else the task's default."""
        return self.selection_metric or DEFAULT_METRIC[self.resolved_task]

    @property
    def gate_metric(self) -> str:
        """The metric the quality gate checks: its own ``metric``, else the selection metric."""
        own = self.quality_gate.metric if self.quality_gate else None
        return own or self.metric


def _format_location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "config"


def _from_validation_error(exc: ValidationError) -> ConfigError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    message = first["msg"]
    message = re.sub(r"^(Value error|Assertion failed), ", "", message)
    if first["type"] == "missing":
        message = "required field is missing"
    elif first["type"] not in ("value_error", "extra_forbidden") and "input" in first:
        message = f"{message} (got {first['input']!r})"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    return ConfigError(_format_location(first["loc"]), message)


def parse_config_data(raw: Any) -> TrainingConfig:
    """Validate an already-parsed config mapping against the schema (field by field only)."""
    if not isinstance(raw, dict):
        raise ConfigError("config", "the file must hold a YAML mapping of fields")
    try:
        return TrainingConfig.model_validate(raw)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None


def parse_yaml(text: str, origin: str = "config") -> Any:
    """YAML text -> Python data; ``origin`` names the file in messages."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError("config", f"{origin} is not valid YAML{where}: {problem}") from None
    return raw


def read_config_file(path: str | Path) -> str:
    """The text of the config file at ``path``; `ConfigError` when it cannot be read."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config", f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"cannot read {path}: {exc}") from None
