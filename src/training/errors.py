"""One exception type per failure kind, each with a short message that names the problem.

Every error raised on purpose by the training package derives from `TrainingError`, so the
entry point and the workflow can print one clear line instead of a traceback.
"""

from __future__ import annotations


class TrainingError(Exception):
    """Base class of every deliberate training failure."""

    kind = "training error"

    def __str__(self) -> str:
        return f"{self.kind}: {super().__str__()}"


class ConfigError(TrainingError):
    """The YAML config (or a setting from the environment) is invalid.

    ``field`` is the dotted path of the offending field, e.g. ``candidates.0.grid.C``.
    """

    kind = "config error"

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class UnknownTrainerError(ConfigError):
    """The config names a trainer that is not registered."""


class UnknownEstimatorError(ConfigError):
    """A candidate names an estimator that is not on the allow-list."""


class DuplicateTrainerError(TrainingError):
    """Two different classes were registered under the same trainer name."""

    kind = "registry error"


class DataSourceError(TrainingError):
    """The data could not be read: missing file, unreachable URL, unparsable CSV."""

    kind = "data source error"


class DataValidationError(TrainingError):
    """The data was read but cannot be trained on; the message names the column."""

    kind = "data error"

    def __init__(self, message: str, column: str | None = None) -> None:
        self.column = column
        super().__init__(message)


class CandidateError(TrainingError):
    """Fitting a candidate failed (e.g. an incompatible combination of hyperparameters)."""

    kind = "candidate error"


class QualityGateError(TrainingError):
    """The best model scored below the configured quality gate; nothing is published."""

    kind = "quality gate failed"


class PublishError(TrainingError):
    """The artifact could not be published; no half-written version is visible."""

    kind = "publish error"
