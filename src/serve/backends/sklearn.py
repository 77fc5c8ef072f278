"""The scikit-learn backend: the published, pickled pipeline run in-process."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from src.serve.artifact import ArtifactMetadata
from src.serve.backends.answers import answers, finite_labels
from src.serve.backends.base import Backend, NumericRows, Prediction, Row

# Pipelines fitted on a DataFrame warn on every call when given a numpy array; we build the
# array in exactly the fitted column order (checked at load time), so the warning is noise.
warnings.filterwarnings(
    "ignore", message="X does not have valid feature names", category=UserWarning
)

# Final estimators whose predict() is, by definition, the argmax of predict_proba(): for these
# one predict_proba() call yields both the label and the probabilities.
ARGMAX_CONSISTENT = frozenset(
    {
        "LogisticRegression",
        "LogisticRegressionCV",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "GradientBoostingClassifier",
        "HistGradientBoostingClassifier",
        "KNeighborsClassifier",
        "GaussianNB",
        "MultinomialNB",
        "BernoulliNB",
        "ComplementNB",
        "CategoricalNB",
    }
)


def _final_estimator(pipeline: Any) -> Any:
    steps = getattr(pipeline, "steps", None)
    return steps[-1][1] if steps else pipeline


def _argmax_consistent(pipeline: Any) -> bool:
    cls = type(_final_estimator(pipeline))
    return cls.__module__.startswith("sklearn.") and cls.__name__ in ARGMAX_CONSISTENT


class SklearnBackend(Backend):
    """A fitted scikit-learn pipeline.

    All-numeric models get a float64 numpy array in the fitted column order (no per-request
    DataFrame) when the pipeline gives the same answer for it as for a DataFrame; otherwise a
    DataFrame with the feature columns. Calls run in scikit-learn's fast config context
    (inputs are already validated finite by the request schema).
    """

    name = "sklearn"

    def __init__(self, pipeline: Any, metadata: ArtifactMetadata, probe_row: Row) -> None:
        self._pipeline = pipeline
        self._columns = list(metadata.feature_names)
        self._classifier = metadata.task == "classification"
        self._has_proba = self._classifier and callable(getattr(pipeline, "predict_proba", None))
        self.has_probabilities = self._has_proba
        self._argmax = self._has_proba and _argmax_consistent(pipeline)
        if self._classifier:
            natives = np.asarray(pipeline.classes_).tolist()
            self._labels = np.empty(len(natives), dtype=object)
            self._labels[:] = natives
            self._proba_keys = [str(label) for label in natives]
            self._labels_finite = finite_labels(natives)
        numeric = all(f.type in ("number", "integer") for f in metadata.features)
        self._use_array = numeric and self._array_matches_frame(probe_row)

    @property
    def uses_numpy_input(self) -> bool:
        """True when requests are fed as a numpy array rather than a DataFrame."""
        return self._use_array

    def _frame(self, rows: Sequence[Row]) -> pd.DataFrame:
        return pd.DataFrame.from_records(list(rows), columns=self._columns)

    def _array_matches_frame(self, probe_row: Row) -> bool:
        method = self._pipeline.predict_proba if self._has_proba else self._pipeline.predict
        try:
            with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
                from_array = method(np.asarray([probe_row], dtype=np.float64))
                from_frame = method(self._frame([probe_row]))
        except Exception:
            return False
        return bool(np.allclose(np.asarray(from_array, dtype=float), from_frame, equal_nan=True))

    def _input(self, rows: Sequence[Row]) -> Any:
        if self._use_array:
            if type(rows) is NumericRows:
                return rows.matrix
            return np.asarray(rows, dtype=np.float64)
        return self._frame(rows)

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict rows; see :class:`~src.serve.backends.base.Backend`."""
        x = self._input(rows)
        pipeline = self._pipeline
        n = len(rows)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            if not self._classifier:
                values = np.asarray(pipeline.predict(x), dtype=np.float64).reshape(n)
                return answers((Prediction(v, None) for v in values.tolist()), n, values)
            if not self._has_proba:
                labels = np.asarray(pipeline.predict(x)).tolist()
                return answers(
                    (Prediction(label, None) for label in labels),
                    n,
                    (),
                    labels_finite=self._labels_finite,
                )
            proba = np.asarray(pipeline.predict_proba(x), dtype=np.float64)
            if self._argmax:
                labels = self._labels[proba.argmax(axis=1)].tolist()
            else:
                labels = np.asarray(pipeline.predict(x)).tolist()
        keys = self._proba_keys
        return answers(
            (
                Prediction(label, dict(zip(keys, probs, strict=True)))
                for label, probs in zip(labels, proba.tolist(), strict=True)
            ),
            n,
            proba,
            labels_finite=self._labels_finite,
        )
