"""The ordered input features of a model and the preprocessing fitted inside its Pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # scikit-learn is imported lazily: light workflow steps never load it
    from sklearn.base import TransformerMixin
    from sklearn.pipeline import Pipeline

FeatureType = Literal["number", "integer", "category"]

#: How a missing categorical value is represented in the cleaned training table. The pipeline
#: imputes it (most frequent category); ONNX string inputs cannot carry NaN, hence a string.
MISSING_CATEGORY = ""


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


def numeric_preprocessor() -> Pipeline:
    """Median imputation then standard scaling."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])


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


def build_preprocessor(spec: FeatureSpec) -> TransformerMixin:
    """Preprocessing for ``spec``.

    All-numeric inputs get a plain imputer + scaler (so the pipeline also accepts a float
    numpy array in feature order); mixed inputs get a ColumnTransformer that one-hot encodes
    the categorical columns (so the pipeline needs a DataFrame with the feature names).
    """
    from sklearn.compose import ColumnTransformer

    if spec.all_numeric:
        return numeric_preprocessor()
    parts = []
    if spec.numeric:
        parts.append(("numeric", numeric_preprocessor(), spec.numeric))
    parts.append(("categorical", categorical_preprocessor(), spec.categorical))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
