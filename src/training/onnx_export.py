"""Compile a fitted pipeline to ONNX with skl2onnx and prove parity on the held-out test set.

Parity means identical labels and probabilities within 1e-5 (classification), or a maximum
relative error within 1e-5 (regression). The graph is tried in float32 first, then, when that
does not convert or fails parity, in float64 (double) with the same parity check. A pipeline
that passes neither is published without ONNX; the reasons are recorded in metadata
``onnx.reason`` and printed. Metadata ``onnx.precision`` names the published graph's precision.

Why float32 first: scikit-learn's trees compare features with their thresholds in float32, so
a float32 graph of an unscaled tree ensemble reproduces them exactly while a double graph does
not; linear models and distances, computed in float64 by scikit-learn, may need a double graph.
onnxruntime has no double kernel for the ``Imputer`` operator, so the double attempt compiles
the NaN imputer from standard operators (``IsNaN`` + ``Where``) instead.

Input layout recorded in metadata ``onnx.inputs`` (``<float>`` is float32 or float64, the
graph's precision):

- all-numeric features: one ``<float>`` tensor ``input`` of shape ``[N, n_features]`` in
  feature order;
- mixed features: one ``[N, 1]`` tensor per feature, named after it: ``<float>`` for numeric
  features, string for categorical ones.

Outputs: classifiers give ``label`` and ``probabilities`` (``[N, n_classes]`` in
``target.classes`` order; no ZipMap); regressors give ``variable`` (``[N, 1]``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from loguru import logger

from src.artifact_contract.layout import ONNX_FILE
from src.training.features import FeatureSpec
from src.training.metrics import Task

PARITY_TOLERANCE = 1e-5

Precision = Literal["float32", "float64"]
#: the precisions tried, in order; the first that converts and passes parity is published
PRECISIONS: tuple[Precision, ...] = ("float32", "float64")
_NUMPY_DTYPE: dict[Precision, type[np.floating]] = {"float32": np.float32, "float64": np.float64}


@dataclass
class OnnxResult:
    """The ONNX bytes (or None) and the metadata ``onnx`` entry describing them."""

    model_bytes: bytes | None
    info: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def converted(self) -> bool:
        """True when ``model.onnx`` should be published."""
        return self.model_bytes is not None

    def summary(self) -> dict[str, Any]:
        """The compact ``onnx`` entry of a candidate in ``metrics.candidates``: precision or
        reason, and the parity figures of the published (else the float32) attempt."""
        entry = {"precision": self.info.get("precision"), "reason": self.info.get("reason")}
        if "parity" in self.info:
            entry["parity"] = self.info["parity"]
        return entry


def not_exported(reason: str) -> OnnxResult:
    """A result that publishes no ONNX file, with ``reason`` recorded."""
    return OnnxResult(None, {"path": None, "reason": reason})


def _input_spec(spec: FeatureSpec, precision: Precision) -> list[dict[str, Any]]:
    if spec.all_numeric:
        return [
            {
                "name": "input",
                "type": precision,
                "shape": [None, len(spec.names)],
                "columns": spec.names,
            }
        ]
    return [
        {
            "name": f.name,
            "type": "string" if f.is_categorical else precision,
            "shape": [None, 1],
            "columns": [f.name],
        }
        for f in spec.features
    ]


def onnx_feeds(
    X: pd.DataFrame,  # noqa: N803
    spec: FeatureSpec,
    precision: Precision = "float32",
) -> dict[str, np.ndarray]:
    """The onnxruntime inputs for a feature table, per the layout above."""
    dtype = _NUMPY_DTYPE[precision]
    if spec.all_numeric:
        return {"input": X[spec.names].to_numpy(dtype=dtype)}
    feeds: dict[str, np.ndarray] = {}
    for f in spec.features:
        column = X[[f.name]]
        feeds[f.name] = (
            column.astype(str).to_numpy(dtype=object)
            if f.is_categorical
            else column.to_numpy(dtype=dtype)
        )
    return feeds


def _convert_nan_imputer(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter of a numeric NaN ``SimpleImputer`` from ``IsNaN`` + ``Where``, which
    onnxruntime runs in double (its ``Imputer`` kernel is float-only); anything else (string
    inputs, other markers, all-NaN columns) goes to skl2onnx's own converter."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from skl2onnx.proto import onnx_proto

    imputer = operator.raw_operator
    marker = imputer.missing_values
    input_type = type(operator.inputs[0].type)
    nan_marker = isinstance(marker, float) and marker != marker
    numeric = input_type in (DoubleTensorType, FloatTensorType) and nan_marker
    statistics = np.asarray(imputer.statistics_, dtype=np.float64) if numeric else None
    if statistics is None or np.isnan(statistics).any():
        convert_sklearn_imputer(scope, operator, container)
        return
    double = input_type is DoubleTensorType
    proto = onnx_proto.TensorProto.DOUBLE if double else onnx_proto.TensorProto.FLOAT
    values = statistics if double else statistics.astype(np.float32)
    features = concatenate_variables(scope, operator.inputs, container)
    fill = scope.get_unique_variable_name("imputed_values")
    container.add_initializer(fill, proto, [len(values)], values.tolist())
    missing = scope.get_unique_variable_name("is_missing")
    container.add_node("IsNaN", [features], [missing], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where",
        [missing, fill, features],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Where"),
    )


def _convert(model: Any, spec: FeatureSpec, task: Task, precision: Precision) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
    from sklearn.impute import SimpleImputer

    number = FloatTensorType if precision == "float32" else DoubleTensorType
    if spec.all_numeric:
        initial_types = [("input", number([None, len(spec.names)]))]
    else:
        initial_types = [
            (f.name, StringTensorType([None, 1]) if f.is_categorical else number([None, 1]))
            for f in spec.features
        ]
    options = {id(model): {"zipmap": False}} if task == "classification" else None
    custom = {SimpleImputer: _convert_nan_imputer} if precision == "float64" else None
    return convert_sklearn(
        model, initial_types=initial_types, options=options, custom_conversion_functions=custom
    )


def _parity(
    session: Any,
    model: Any,
    X: pd.DataFrame,  # noqa: N803 - scikit-learn's conventional name
    spec: FeatureSpec,
    task: Task,
    precision: Precision,
) -> tuple[dict[str, Any], str | None]:
    outputs = session.run(None, onnx_feeds(X, spec, precision))
    if task == "regression":
        expected = np.asarray(model.predict(X), dtype=float)
        got = np.asarray(outputs[0], dtype=float).reshape(-1)
        scale = max(float(np.max(np.abs(expected))), np.finfo(float).tiny)
        max_rel = float(np.max(np.abs(got - expected)) / scale)
        parity = {"n_rows": len(X), "max_rel_error": max_rel, "tolerance": PARITY_TOLERANCE}
        if not max_rel <= PARITY_TOLERANCE:
            return parity, f"parity check failed: max relative error {max_rel:.3g} > 1e-5"
        return parity, None
    expected_labels = model.predict(X)
    got_labels = np.asarray(outputs[0]).reshape(-1)
    labels_equal = bool(
        np.array_equal(got_labels.astype(str), np.asarray(expected_labels).astype(str))
    )
    parity = {"n_rows": len(X), "labels_equal": labels_equal, "tolerance": PARITY_TOLERANCE}
    if hasattr(model, "predict_proba"):
        diff = float(np.max(np.abs(np.asarray(outputs[1]) - model.predict_proba(X))))
        parity["max_abs_prob_diff"] = diff
    else:
        parity["max_abs_prob_diff"] = None
    if not labels_equal:
        n_diff = int(np.sum(got_labels.astype(str) != np.asarray(expected_labels).astype(str)))
        return parity, f"parity check failed: {n_diff} of {len(X)} labels differ"
    diff = parity["max_abs_prob_diff"]
    if diff is not None and not diff <= PARITY_TOLERANCE:
        return parity, f"parity check failed: max probability difference {diff:.3g} > 1e-5"
    return parity, None


def _describe(exc: BaseException) -> str:
    """``Type: first line`` of an error, and of the error that caused it (skl2onnx often
    wraps the telling one)."""
    lines = str(exc).strip().splitlines() or [""]
    text = f"{type(exc).__name__}: {lines[0][:300]}"
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        cause_lines = str(cause).strip().splitlines() or [""]
        text += f" (caused by {type(cause).__name__}: {cause_lines[0][:200]})"
    return text


def _export_at(
    model: Any,
    spec: FeatureSpec,
    X_test: pd.DataFrame,  # noqa: N803
    task: Task,
    precision: Precision,
) -> OnnxResult:
    """One attempt at ``precision``: the published result, or no bytes and the reason."""
    import onnxruntime as ort
    import skl2onnx

    try:
        onnx_model = _convert(model, spec, task, precision)
        model_bytes = onnx_model.SerializeToString()
        session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
        parity, failure = _parity(session, model, X_test, spec, task, precision)
    except Exception as exc:  # any converter/runtime failure means "not at this precision"
        return not_exported(f"conversion failed: {_describe(exc)}")
    if failure is not None:
        result = not_exported(failure)
        result.info["parity"] = parity
        return result
    import onnx

    opset = max(
        (imp.version for imp in onnx_model.opset_import if imp.domain in ("", "ai.onnx")),
        default=None,
    )
    outputs = [o.name for o in session.get_outputs()]
    info = {
        "path": ONNX_FILE,
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "size_bytes": len(model_bytes),
        "precision": precision,
        "opset": opset,
        "opsets": {imp.domain or "ai.onnx": imp.version for imp in onnx_model.opset_import},
        "converter": f"skl2onnx {skl2onnx.__version__}",
        "parity": parity,
        "inputs": _input_spec(spec, precision),
        "outputs": outputs,
        "reason": None,
    }
    versions = {"skl2onnx": skl2onnx.__version__, "onnx": onnx.__version__}
    return OnnxResult(model_bytes, info, versions)


def compile_onnx(
    model: Any,
    spec: FeatureSpec,
    X_test: pd.DataFrame,  # noqa: N803
    task: Task,
) -> OnnxResult:
    """Convert ``model`` and check parity on ``X_test`` at each of `PRECISIONS` in turn;
    never raises for a conversion problem and logs nothing (`export_onnx` does).

    Returns the first graph that passes with its metadata entry (``precision`` says which;
    ``attempts`` lists the precisions that failed before it, with their reasons), or no bytes
    and the reasons of every attempt (``reason`` joins them, ``parity`` is the float32 one).
    """
    try:
        import onnxruntime  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError as exc:  # pragma: no cover - both are pinned in requirements.txt
        return not_exported(f"ONNX tooling not installed: {exc}")
    failed: list[dict[str, Any]] = []
    for precision in PRECISIONS:
        result = _export_at(model, spec, X_test, task, precision)
        if result.converted:
            if failed:
                result.info["attempts"] = failed
            return result
        failed.append({"precision": precision, **result.info})
        del failed[-1]["path"]
    result = not_exported(_joined(failed))
    if "parity" in failed[0]:
        result.info["parity"] = failed[0]["parity"]
    result.info["attempts"] = failed
    return result


def export_onnx(
    model: Any,
    spec: FeatureSpec,
    X_test: pd.DataFrame,  # noqa: N803
    task: Task,
) -> OnnxResult:
    """`compile_onnx`, logging the outcome: a warning with the reasons when nothing passed,
    a note when only a later precision did."""
    result = compile_onnx(model, spec, X_test, task)
    if not result.converted:
        logger.warning("ONNX export skipped: {}", result.info["reason"])
    elif result.info.get("attempts"):
        logger.info(
            "ONNX exported in {} ({})", result.info["precision"], _joined(result.info["attempts"])
        )
    return result


def _joined(failed: list[dict[str, Any]]) -> str:
    """``"float32: <reason>; float64: <reason>"``."""
    return "; ".join(f"{attempt['precision']}: {attempt['reason']}" for attempt in failed)
