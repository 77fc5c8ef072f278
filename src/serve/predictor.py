"""Inference backends behind one small interface.

A backend turns validated rows (tuples of values in the metadata's feature order) into
:class:`Prediction` objects. It is built once per loaded model and must be thread-safe:
routes call :meth:`Backend.predict` from a thread pool (or inline for sub-50-microsecond
calls, see ``inference.py``). Two exist: :class:`SklearnBackend` here and ``OnnxBackend``
(``onnx_backend.py``); to add one, subclass :class:`Backend` and choose it in
:func:`create_backend`.
"""

from __future__ import annotations

import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
import sklearn
from loguru import logger

from src.serve.artifact import ArtifactMetadata, LoadedArtifact, load_pipeline
from src.serve.settings import Settings

Row = Sequence[Any]
Label = str | int | float | bool

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


class Prediction(NamedTuple):
    """One row's answer: the label (classifier) or value (regressor), and class probabilities."""

    prediction: Label
    probabilities: dict[str, float] | None


class Backend(ABC):
    """Runs a loaded model. Implementations are immutable after construction and thread-safe.

    A swapped-out backend is simply dropped: requests still running on it finish normally and
    garbage collection frees it, so backends must not depend on an explicit close.
    """

    name: ClassVar[str]
    #: True when answers carry class probabilities (classifiers exposing them).
    has_probabilities: bool = False

    @abstractmethod
    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict every row (each a sequence of values in feature order), in order."""


#: A backend call predicted to take at most this long runs on the event loop itself: handing
#: it to the thread pool costs ~40-50 us of CPU per call (measured, docs/performance.md), more
#: than the call, and on a one-core worker the thread competes for the same core anyway.
INLINE_BUDGET_SECONDS = 50e-6
#: Backends whose one-row call takes longer than this are not timed further at load.
TIMING_SKIP_SECONDS = 5e-3
TIMING_BATCH_ROWS = 64


def inline_row_limit(
    backend: Backend, probe_row: Row, budget_seconds: float = INLINE_BUDGET_SECONDS
) -> int:
    """How many rows one call may predict inline (0: always use the thread pool).

    Times the backend on ``probe_row`` (best of a few calls, 1 row and 64 rows) and returns
    the largest row count whose predicted time fits ``budget_seconds``. A noisy machine only
    makes the limit smaller (slower measured calls), never unsafe.
    """

    def best_of(rows: Sequence[Row], repeat: int) -> float:
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            backend.predict(rows)
            best = min(best, time.perf_counter() - started)
        return best

    try:
        one = best_of([probe_row], 1)
        if one > TIMING_SKIP_SECONDS:
            return 0
        one = min(one, best_of([probe_row], 5))
        if one > budget_seconds:
            return 0
        many = best_of([probe_row] * TIMING_BATCH_ROWS, 3)
    except Exception:  # a backend that cannot be timed simply never runs inline
        return 0
    per_row = max((many - one) / (TIMING_BATCH_ROWS - 1), 1e-9)
    return max(1, min(TIMING_BATCH_ROWS, 1 + int((budget_seconds - one) / per_row)))


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
            return np.asarray(rows, dtype=np.float64)
        return self._frame(rows)

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict rows; see :class:`Backend`."""
        x = self._input(rows)
        pipeline = self._pipeline
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            if not self._classifier:
                values = np.asarray(pipeline.predict(x), dtype=np.float64).reshape(len(rows))
                return [Prediction(v, None) for v in values.tolist()]
            if not self._has_proba:
                return [
                    Prediction(label, None) for label in np.asarray(pipeline.predict(x)).tolist()
                ]
            proba = np.asarray(pipeline.predict_proba(x), dtype=np.float64)
            if self._argmax:
                labels = self._labels[proba.argmax(axis=1)].tolist()
            else:
                labels = np.asarray(pipeline.predict(x)).tolist()
        keys = self._proba_keys
        return [
            Prediction(label, dict(zip(keys, probs, strict=True)))
            for label, probs in zip(labels, proba.tolist(), strict=True)
        ]


def create_backend(artifact: LoadedArtifact, probe_row: Row, settings: Settings) -> Backend:
    """Build the backend that serves ``artifact`` (``INFERENCE_BACKEND``, ``ALLOW_PICKLE``).

    ``probe_row`` is a typical input in feature order (training medians) for load-time checks.

    - ``auto``: the ONNX backend when ``model.onnx`` is published, matches its sha256 and the
      graph can be fed; otherwise scikit-learn (the reason is logged) if ``ALLOW_PICKLE``
      allows, else the model is refused with that reason.
    - ``onnx``: the ONNX backend or refusal (``ArtifactError`` with the reason).
    - ``sklearn``: the pickled pipeline (settings validation requires ``ALLOW_PICKLE``).

    ``model.joblib`` is read and unpickled only when scikit-learn serves (``artifact.pipeline``
    is ``None`` when the loader deferred it).
    """
    choice = settings.inference_backend
    if choice != "sklearn":
        # Imported here: onnxruntime loads only when ONNX may serve.
        from src.serve.onnx_backend import NoOnnxError, load_onnx_backend

        why_not = load_onnx_backend(artifact, probe_row)
        if isinstance(why_not, Backend):
            return why_not
        if choice == "onnx":
            raise type(why_not)(f"{why_not.message} (INFERENCE_BACKEND=onnx)")
        if not settings.allow_pickle:
            raise type(why_not)(
                f"{why_not.message}; ALLOW_PICKLE=false forbids the scikit-learn fallback"
            )
        # No ONNX published is routine (INFO); one published but unusable is worth a WARNING.
        logger.log(
            "INFO" if isinstance(why_not, NoOnnxError) else "WARNING",
            "ONNX backend not used, serving with scikit-learn: {}",
            why_not.message,
        )
    pipeline = artifact.pipeline
    if pipeline is None:
        pipeline = load_pipeline(artifact.ref, artifact.metadata)
    return SklearnBackend(pipeline, artifact.metadata, probe_row)
