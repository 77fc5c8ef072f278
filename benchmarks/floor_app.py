"""The "floors": bare ASGI apps that do nothing but parse a row and call the model.

`BENCH_FLOOR=sklearn` calls the joblib pipeline's predict_proba (inside the same fast
scikit-learn config context the service uses); `BENCH_FLOOR=onnx` calls an onnxruntime
session with one intra-op thread. `BENCH_MODEL_DIR` is a published artifact version
directory. No auth, no metrics, no logging, no validation beyond what the model needs:
what any server must at least pay to answer one row.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson

_MODEL_DIR = Path(os.environ["BENCH_MODEL_DIR"])
_KIND = os.environ.get("BENCH_FLOOR", "sklearn")
_METADATA = json.loads((_MODEL_DIR / "metadata.json").read_text())
_FEATURES = [f["name"] for f in _METADATA["features"]]
_CLASSES = [str(c) for c in _METADATA["target"]["classes"]]


def _load_predict() -> Any:
    if _KIND == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(_MODEL_DIR / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name
        dtype = np.float64 if "double" in session.get_inputs()[0].type else np.float32

        def predict(row: list[float]) -> np.ndarray:
            return session.run(None, {name: np.asarray([row], dtype=dtype)})[1][0]

        return predict

    import warnings

    import joblib
    import sklearn

    # The fastest honest call: a numpy row in the metadata's column order (the pipeline was
    # fitted on named columns, so silence the per-call feature-name warning).
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    pipeline = joblib.load(_MODEL_DIR / "model.joblib")

    def predict(row: list[float]) -> np.ndarray:
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return pipeline.predict_proba(np.asarray([row], dtype=np.float64))[0]

    return predict


_PREDICT = _load_predict()


async def app(scope: dict, receive: Any, send: Any) -> None:
    """Answer every POST with the model's prediction for the JSON row in the body."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    record = orjson.loads(body)
    probabilities = _PREDICT([float(record[name]) for name in _FEATURES])
    best = int(np.argmax(probabilities))
    payload = orjson.dumps(
        {
            "prediction": _CLASSES[best],
            "probabilities": dict(zip(_CLASSES, map(float, probabilities), strict=True)),
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})
