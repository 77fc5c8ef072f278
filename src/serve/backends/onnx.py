"""The ONNX backend: the published ``model.onnx`` run by onnxruntime.

The graph is the same fitted pipeline compiled by skl2onnx at training time (docs/artifact.md,
``onnx``), checked there for parity with scikit-learn on the held-out test set. Here it runs in
one ``InferenceSession`` per loaded model with one intra-op and one inter-op thread and
sequential execution (one core per worker: scale with ``WORKERS``, not threads), created from
bytes whose sha256 was checked against metadata first
(:func:`~src.serve.artifact.read_verified_onnx_bytes`). :func:`load_onnx_backend` raises an
``ArtifactError`` saying why a model cannot be served this way, so the factory can fall back
or refuse (``INFERENCE_BACKEND``).

How rows are fed, read from the graph itself:

- one numeric input of shape ``[N, n_features]`` (all-numeric models): the rows as one matrix
  in feature order, in the input's dtype (float32 or double);
- one ``[N, 1]`` input per feature, named after it (models with categorical features): a
  column per feature, strings for ``tensor(string)`` inputs.

Outputs: classifiers ``label`` then ``probabilities`` (``[N, n_classes]`` in
``target.classes`` order, no ZipMap); regressors one ``[N, 1]`` value. Labels are mapped back
to the metadata's class values so answers are those of the scikit-learn backend.

Each prediction calls the session's native ``run`` (:func:`native_run`), not the Python
wrapper's, whose per-call checks cannot fail here and cost about a fifth of a one-row call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

import numpy as np
import onnxruntime as ort

from src.serve.artifact import ArtifactMetadata, LoadedArtifact, read_verified_onnx_bytes
from src.serve.backends.answers import answers, finite_labels
from src.serve.backends.base import Backend, NumericRows, Prediction, Row
from src.serve.errors import NoOnnxError, OnnxUnsupportedError

PARITY_TOLERANCE = 1e-5  # docs/artifact.md: labels equal, probabilities within 1e-5
NUMPY_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(string)": object,
}


def session_options() -> ort.SessionOptions:
    """One intra-op and one inter-op thread, sequential execution, full graph optimisation."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: onnxruntime's warnings go to stderr raw
    return options


def _first_line(exc: Exception) -> str:
    """The first line of an onnxruntime error, short enough for a log line and a reason."""
    return (str(exc).strip().splitlines() or [""])[0][:300]


def _dtype(node: Any) -> Any:
    dtype = NUMPY_DTYPES.get(node.type)
    if dtype is None:
        raise OnnxUnsupportedError(f"input {node.name!r} has unsupported type {node.type}")
    return dtype


Feeder = Callable[[Sequence[Row]], dict[str, np.ndarray]]
Run = Callable[[list[str], dict[str, np.ndarray], Any], list[np.ndarray]]


def native_run(session: ort.InferenceSession) -> Run:
    """The session's ``run(output_names, input_feed, run_options)``, without the Python
    wrapper's per-call checks where the wrapped native session is at hand.

    ``InferenceSession.run`` first checks that WebGPU graph capture is off, that every graph
    input is fed and that fed ``OrtValue``s belong to this session, then calls the native
    session (its ``_sess``). None of that can fail here: the CPU provider, numpy arrays only,
    and a feeder built from the graph's own inputs and tried on a typical row at load. It
    costs about 2 of the 10 us of a one-row iris call (docs/performance.md). An onnxruntime
    without ``_sess`` gets the public method (same arguments, same answers).
    """
    native = getattr(getattr(session, "_sess", None), "run", None)
    return native if callable(native) else session.run


def _matrix_feeder(node: Any, metadata: ArtifactMetadata) -> Feeder:
    n_features = len(metadata.features)
    if any(f.type == "category" for f in metadata.features):
        raise OnnxUnsupportedError(
            "the graph takes one matrix but the model has categorical features"
        )
    shape = list(node.shape or [])
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != n_features):
        raise OnnxUnsupportedError(
            f"input {node.name!r} has shape {shape}, expected [N, {n_features}]"
        )
    dtype = _dtype(node)
    if dtype is object:
        raise OnnxUnsupportedError(f"input {node.name!r} takes strings, not numbers")
    name = node.name

    def feed(rows: Sequence[Row]) -> dict[str, np.ndarray]:
        if type(rows) is NumericRows:  # the parser's matrix: no second pass over the rows
            return {name: rows.matrix.astype(dtype, copy=False)}
        return {name: np.asarray(rows, dtype=dtype)}

    return feed


def _column_feeder(nodes: Sequence[Any], metadata: ArtifactMetadata) -> Feeder:
    by_name = {node.name: node for node in nodes}
    names = metadata.feature_names
    if set(by_name) != set(names):
        raise OnnxUnsupportedError(
            "the graph's inputs are neither one matrix nor one column per feature "
            f"(inputs {sorted(by_name)[:10]})"
        )
    plan = []
    for index, feature in enumerate(metadata.features):
        node = by_name[feature.name]
        dtype = _dtype(node)
        if (dtype is object) != (feature.type == "category"):
            raise OnnxUnsupportedError(
                f"input {feature.name!r} is {node.type} but the feature is a {feature.type}"
            )
        plan.append((feature.name, index, dtype))

    def feed(rows: Sequence[Row]) -> dict[str, np.ndarray]:
        columns = list(zip(*rows, strict=True))
        n = len(rows)
        return {
            name: np.asarray(columns[index], dtype=dtype).reshape(n, 1)
            for name, index, dtype in plan
        }

    return feed


class OnnxBackend(Backend):
    """See the module docstring. Thread-safe: ``InferenceSession.run`` may be called
    concurrently."""

    name = "onnx"

    def __init__(self, model_bytes: bytes, metadata: ArtifactMetadata, probe_row: Row) -> None:
        try:
            session = ort.InferenceSession(
                model_bytes, session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own (Fail, InvalidGraph, ...) types
            raise OnnxUnsupportedError(
                f"onnxruntime cannot load model.onnx: {_first_line(exc)}"
            ) from exc
        self._session = session
        self._run = native_run(session)
        inputs = session.get_inputs()
        all_numeric = all(f.type != "category" for f in metadata.features)
        self._feed = (
            _matrix_feeder(inputs[0], metadata)
            if len(inputs) == 1 and all_numeric
            else _column_feeder(inputs, metadata)
        )
        outputs = session.get_outputs()
        self._classifier = metadata.task == "classification"
        if self._classifier:
            self._init_classifier(outputs, metadata)
        else:
            if not outputs or "tensor" not in outputs[0].type:
                raise OnnxUnsupportedError("the graph has no tensor output for the prediction")
            self._outputs = [outputs[0].name]
            self.has_probabilities = False
        self._check(probe_row, metadata)

    def _init_classifier(self, outputs: Sequence[Any], metadata: ArtifactMetadata) -> None:
        classes = metadata.target.classes or []
        if not classes:
            raise OnnxUnsupportedError("a classifier's metadata must list target.classes")
        self._classes = list(classes)
        self._labels_finite = finite_labels(classes)
        self._proba_keys = [str(c) for c in classes]
        # Labels come out as strings or int64: map either spelling back to the metadata value.
        self._label_of: dict[Any, Any] = {}
        for value in classes:
            self._label_of[str(value)] = value
            self._label_of[value] = value
        parity = (metadata.onnx or {}).get("parity") or {}
        wants_proba = parity.get("max_abs_prob_diff", 0.0) is not None
        if len(outputs) >= 2 and wants_proba:
            if not outputs[1].type.startswith("tensor("):
                raise OnnxUnsupportedError(
                    f"output {outputs[1].name!r} is {outputs[1].type} (ZipMap on?); "
                    "expected a [N, n_classes] probability tensor"
                )
            self._outputs = [outputs[0].name, outputs[1].name]
            self.has_probabilities = True
        else:
            self._outputs = [outputs[0].name]
            self.has_probabilities = False

    def _check(self, probe_row: Row, metadata: ArtifactMetadata) -> None:
        try:
            results = self._run(self._outputs, self._feed([probe_row]), None)
        except Exception as exc:
            raise OnnxUnsupportedError(
                f"the graph fails on a typical row: {_first_line(exc)}"
            ) from exc
        if self._classifier:
            label = results[0].reshape(-1).tolist()[0]
            if label not in self._label_of:
                raise OnnxUnsupportedError(
                    f"the graph answers label {label!r}, not one of target.classes"
                )
            if self.has_probabilities and results[1].shape != (1, len(self._classes)):
                raise OnnxUnsupportedError(
                    f"probabilities have shape {list(results[1].shape)} for one row, expected "
                    f"[1, {len(self._classes)}]"
                )
        elif results[0].size != 1:
            raise OnnxUnsupportedError(
                f"the prediction has shape {list(results[0].shape)} for one row, expected [1, 1]"
            )

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict rows; see :class:`~src.serve.backends.base.Backend`."""
        results = self._run(self._outputs, self._feed(rows), None)
        n = len(rows)
        if not self._classifier:
            values = results[0].reshape(-1)
            return answers(map(Prediction, values.tolist(), repeat(None)), n, values)
        if n == 1 and self.has_probabilities:  # one /predict row: no iterator pipeline
            label = results[0].item()  # its one label as a Python value, like tolist()
            (values,) = results[1].tolist()
            probabilities = dict(zip(self._proba_keys, values, strict=True))
            return [Prediction(self._label_of[label], probabilities)]
        labels = map(self._label_of.__getitem__, results[0].reshape(-1).tolist())
        if not self.has_probabilities:
            return answers(
                map(Prediction, labels, repeat(None)), n, (), labels_finite=self._labels_finite
            )
        # C-level loops (map/zip, tuple.__new__ for the NamedTuple): 1,000 rows in ~0.45 ms
        # instead of ~0.8 ms with a comprehension calling Prediction(...) per row. Shapes were
        # checked at load (one label and n_classes probabilities per row).
        proba = results[1]
        probabilities = map(dict, map(zip, repeat(self._proba_keys), proba.tolist()))
        return answers(
            map(tuple.__new__, repeat(Prediction), zip(labels, probabilities, strict=True)),
            n,
            proba,
            labels_finite=self._labels_finite,
        )


def _parity_problem(parity: dict[str, Any]) -> str | None:
    """Why the recorded parity figures disqualify the graph (None when they are fine).

    Training publishes ``model.onnx`` only after parity passed, so this is a second line of
    defence (e.g. an artifact written by another tool): labels must be equal and probabilities
    or regression values within :data:`PARITY_TOLERANCE`.
    """
    if parity.get("labels_equal") is False:
        return "labels differ from scikit-learn's"
    for key in ("max_abs_prob_diff", "max_rel_error"):
        value = parity.get(key)
        if isinstance(value, int | float) and not value <= PARITY_TOLERANCE:
            return f"{key} {value:.3g} > {PARITY_TOLERANCE:g}"
    return None


def load_onnx_backend(artifact: LoadedArtifact, probe_row: Row) -> OnnxBackend:
    """The ONNX backend of ``artifact``; raises an ``ArtifactError`` saying why it has none.

    :class:`~src.serve.errors.NoOnnxError`: no ``model.onnx`` published (metadata
    ``onnx.reason`` quoted). :class:`~src.serve.errors.OnnxUnsupportedError`: parity figures
    that fail, or a graph this backend cannot feed or read. ``IntegrityError``: a file that is
    missing or does not match its sha256. Never unpickles anything.
    """
    metadata = artifact.metadata
    version = metadata.model_version
    entry = metadata.onnx or {}
    if entry.get("path") != "model.onnx":
        reason = entry.get("reason") or "no reason recorded"
        raise NoOnnxError(f"version {version}: no model.onnx is published ({reason})")
    failed_parity = _parity_problem(entry.get("parity") or {})
    if failed_parity:
        raise OnnxUnsupportedError(
            f"version {version}: model.onnx failed its recorded parity check ({failed_parity})"
        )
    model_bytes = read_verified_onnx_bytes(artifact.ref, metadata)
    try:
        return OnnxBackend(model_bytes, metadata, probe_row)
    except OnnxUnsupportedError as exc:
        raise OnnxUnsupportedError(f"version {version}: model.onnx: {exc.message}") from exc
