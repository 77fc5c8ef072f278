"""Compile a fitted pipeline to ONNX with skl2onnx and prove parity on the held-out test set.

Parity means identical labels and probabilities within 1e-5 (classification), or a maximum
relative error within 1e-5 (regression). A pipeline that does not convert or fails parity is
published without ONNX; the reason is recorded in metadata ``onnx.reason`` and printed.

Input layout recorded in metadata ``onnx.inputs``:

- all-numeric features: one float32 tensor ``input`` of shape ``[N, n_features]`` in feature
  order;
- mixed features: one ``[N, 1]`` tensor per feature, named after it: float32 for numeric
  features, string for categorical ones.

Outputs: classifiers give ``label`` and ``probabilities`` (``[N, n_classes]`` in
``target.classes`` order; no ZipMap); regressors give ``variable`` (``[N, 1]``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from loguru import logger

from src.artifact_contract.layout import ONNX_FILE
from src.training.features import FeatureSpec
from src.training.metrics import Task

PARITY_TOLERANCE = 1e-5


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


def not_exported(reason: str) -> OnnxResult:
    """A result that publishes no ONNX file, with ``reason`` recorded."""
    return OnnxResult(None, {"path": None, "reason": reason})


def _input_spec(spec: FeatureSpec) -> list[dict[str, Any]]:
    if spec.all_numeric:
        return [
            {
                "name": "input",
                "type": "float32",
                "shape": [None, len(spec.names)],
                "columns": spec.names,
            }
        ]
    return [
        {
            "name": f.name,
            "type": "string" if f.is_categorical else "float32",
            "shape": [None, 1],
            "columns": [f.name],
        }
        for f in spec.features
    ]


def onnx_feeds(X: pd.DataFrame, spec: FeatureSpec) -> dict[str, np.ndarray]:  # noqa: N803
    """The onnxruntime inputs for a feature table, per the layout above."""
    if spec.all_numeric:
        return {"input": X[spec.names].to_numpy(dtype=np.float32)}
    feeds: dict[str, np.ndarray] = {}
    for f in spec.features:
        column = X[[f.name]]
        feeds[f.name] = (
            column.astype(str).to_numpy(dtype=object)
            if f.is_categorical
            else column.to_numpy(dtype=np.float32)
        )
    return feeds


def _convert(model: Any, spec: FeatureSpec, task: Task) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    if spec.all_numeric:
        initial_types = [("input", FloatTensorType([None, len(spec.names)]))]
    else:
        initial_types = [
            (
                f.name,
                StringTensorType([None, 1]) if f.is_categorical else FloatTensorType([None, 1]),
            )
            for f in spec.features
        ]
    options = {id(model): {"zipmap": False}} if task == "classification" else None
    return convert_sklearn(model, initial_types=initial_types, options=options)


def _parity(
    session: Any,
    model: Any,
    X: pd.DataFrame,  # noqa: N803 - scikit-learn's conventional name
    spec: FeatureSpec,
    task: Task,
) -> tuple[dict[str, Any], str | None]:
    outputs = session.run(None, onnx_feeds(X, spec))
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


def export_onnx(
    model: Any,
    spec: FeatureSpec,
    X_test: pd.DataFrame,  # noqa: N803
    task: Task,
) -> OnnxResult:
    """Convert ``model`` and check parity on ``X_test``; never raises for a conversion problem.

    Returns the ONNX bytes with their metadata entry, or no bytes and the reason.
    """
    try:
        import onnxruntime as ort
        import skl2onnx
    except ImportError as exc:  # pragma: no cover - both are pinned in requirements.txt
        return not_exported(f"ONNX tooling not installed: {exc}")
    try:
        onnx_model = _convert(model, spec, task)
        model_bytes = onnx_model.SerializeToString()
        session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
        parity, failure = _parity(session, model, X_test, spec, task)
    except Exception as exc:  # any converter/runtime failure means "publish without ONNX"
        reason = f"conversion failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        logger.warning("ONNX export skipped: {}", reason)
        return not_exported(reason)
    if failure is not None:
        logger.warning("ONNX export skipped: {}", failure)
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
        "opset": opset,
        "opsets": {imp.domain or "ai.onnx": imp.version for imp in onnx_model.opset_import},
        "converter": f"skl2onnx {skl2onnx.__version__}",
        "parity": parity,
        "inputs": _input_spec(spec),
        "outputs": outputs,
        "reason": None,
    }
    versions = {"skl2onnx": skl2onnx.__version__, "onnx": onnx.__version__}
    return OnnxResult(model_bytes, info, versions)
