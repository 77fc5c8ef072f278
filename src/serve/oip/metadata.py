"""Server and model metadata of the Open Inference Protocol, from the artifact metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from src.serve.oip.codec import (
    FEATURE_DATATYPES,
    LABEL_OUTPUT,
    PROBABILITIES_OUTPUT,
    class_keys,
    label_datatype,
    output_names,
)

if TYPE_CHECKING:
    from src.serve.loaded_model import LoadedModel

SERVER_NAME = "mlops-toolset"
EXTENSIONS = ("binary_tensor_data",)


def server_metadata(api_version: str) -> dict[str, Any]:
    """``GET /v2``: name, version and the extensions this server implements."""
    return {"name": SERVER_NAME, "version": api_version, "extensions": list(EXTENSIONS)}


def model_metadata(model: LoadedModel) -> dict[str, Any]:
    """``GET /v2/models/{name}``: one input tensor per feature in feature order (variable
    batch: ``-1``), the outputs, and in ``parameters`` the task and the class order."""
    metadata = model.metadata
    outputs = []
    for name in output_names(model):
        if name == LABEL_OUTPUT:
            outputs.append({"name": name, "datatype": label_datatype(model), "shape": [-1]})
        elif name == PROBABILITIES_OUTPUT:
            outputs.append(
                {"name": name, "datatype": "FP64", "shape": [-1, len(class_keys(model))]}
            )
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": model.backend.name,
        "inputs": [
            {"name": f.name, "datatype": FEATURE_DATATYPES[f.type], "shape": [-1]}
            for f in metadata.features
        ],
        "outputs": outputs,
        "parameters": {
            "task": metadata.task,
            # Parameter values are strings, numbers or booleans: the class order (the columns
            # of ``probabilities``) as a JSON array in a string.
            **(
                {"classes": orjson.dumps(class_keys(model)).decode()} if model.is_classifier else {}
            ),
        },
    }
