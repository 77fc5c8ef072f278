"""The ordered input features of a model and the preprocessing fitted inside its Pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from src.artifact_contract.layout import MISSING_CATEGORY

if TYPE_CHECKING:  # scikit-learn is imported lazily: light workflow steps never load it
    from sklearn.base import TransformerMixin
    from sklearn.pipeline import Pipeline

FeatureType = Literal["number", "integer", "category"]

# A missing categorical value is the contract's MISSING_CATEGORY ("") in the cleaned training
# table, and serving feeds the same marker for a null category; the pipeline imputes it.


@dataclass(frozen=True)
class Feature:
    """One input column: its name and type (``number``, ``integer`` or ``category``)."""

    name: str
    type: FeatureType

    @property
    def is_categorical(self) -> bool:
        """True for string-valued category columns."""
        return self.type == "category"


@dataclass(frozen=True)
class FeatureSpec:
    """The ordered input features; the pipeline takes columns in exactly this order."""

    features: tuple[Feature, ...]

    @property
    def names(self) -> list[str]:
        """All feature names, in order."""
        return [f.name for f in self.features]

    @property
    def numeric(self) -> list[str]:
        """Names of numeric features, in order."""
        return [f.name for f in self.features if not f.is_categorical]

    @property
    def categorical(self) -> list[str]:
        """Names of categorical features, in order."""
        return [f.name for f in self.features if f.is_categorical]

    @property
    def all_numeric(self) -> bool:
        """True when there is no categorical feature."""
        return not self.categorical


def numeric_preprocessor(scale: bool = True) -> Pipeline:
    """Median imputation, then standard scaling when ``scale``."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps: list[tuple[str, TransformerMixin]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def categorical_preprocessor() -> Pipeline:
    """Most-frequent imputation of missing ('') values then one-hot (unknown values ignored)."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    return Pipeline(
        [
            (
                "impute",
                SimpleImputer(missing_values=MISSING_CATEGORY, strategy="most_frequent"),
            ),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )


def build_preprocessor(spec: FeatureSpec, *, scale: bool = True) -> TransformerMixin:
    """Preprocessing for ``spec``; ``scale`` adds a StandardScaler after the numeric imputer
    (`estimators.scales_numeric_features` decides it per estimator).

    All-numeric inputs get a plain imputer (+ scaler) pipeline (so the pipeline also accepts a
    float numpy array in feature order); mixed inputs get a ColumnTransformer that one-hot
    encodes the categorical columns (so the pipeline needs a DataFrame with the feature names).
    """
    from sklearn.compose import ColumnTransformer

    if spec.all_numeric:
        return numeric_preprocessor(scale)
    parts = []
    if spec.numeric:
        parts.append(("numeric", numeric_preprocessor(scale), spec.numeric))
    parts.append(("categorical", categorical_preprocessor(), spec.categorical))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def _is_imputer(step: object, missing: object) -> bool:
    """True for a fitted scikit-learn imputer that replaces ``missing`` (NaN or a string)."""
    from sklearn.impute import KNNImputer, SimpleImputer

    if not isinstance(step, (SimpleImputer, KNNImputer)):
        return False
    marker = step.missing_values
    if isinstance(missing, float):  # NaN equals nothing, so compare "is it NaN" instead
        return isinstance(marker, float) and marker != marker
    return marker == missing


def _imputes_first(transformer: object, missing: object) -> bool:
    """True when ``transformer`` (or the first step of a Pipeline) imputes ``missing``."""
    from sklearn.pipeline import Pipeline

    while isinstance(transformer, Pipeline):
        transformer = transformer.steps[0][1]
    return _is_imputer(transformer, missing)


def imputed_features(model: object, spec: FeatureSpec) -> list[str]:
    """Names of the features whose missing value the fitted ``model`` pipeline imputes.

    Read from the fitted pipeline itself: a feature counts when the first transformer its
    column meets is an imputer for its missing marker (NaN for numbers, `MISSING_CATEGORY`
    for categories), either the pipeline's first step or its ColumnTransformer's branch.
    Anything else (no imputer, a model that is not a Pipeline) imputes nothing.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline):
        return []

    def missing_marker(name: str) -> object:
        return MISSING_CATEGORY if name in spec.categorical else float("nan")

    first = model.steps[0][1]
    if isinstance(first, ColumnTransformer):
        imputed: set[str] = set()
        for _, transformer, columns in first.transformers_:
            names = [spec.names[c] if isinstance(c, int) else str(c) for c in columns]
            imputed.update(n for n in names if _imputes_first(transformer, missing_marker(n)))
        return [name for name in spec.names if name in imputed]
    return [name for name in spec.names if _imputes_first(model, missing_marker(name))]
