"""Decode an Open Inference Protocol inference request into validated rows, and encode the
predictions as output tensors.

Two input layouts (docs/serving.md, "Open Inference Protocol"):

- one tensor per feature, named after it, shape ``[N]`` or ``[N, 1]`` (``BYTES`` for
  categorical features);
- one numeric tensor of shape ``[N, n_features]`` in the model's feature order, under any
  name that is not a feature's (all features numeric).

Either way the values are checked by the model's own request schema
(``ModelSchemas.parse_record`` / ``parse_batch``): the very rules, bounds and messages of
``/predict`` and ``/predict/batch``.
Outputs: ``label`` (``[N]``) and, for classifiers with probabilities, ``probabilities``
(``[N, n_classes]`` in the metadata's class order). The binary tensor data extension works in
both directions (``Inference-Header-Content-Length``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from src.serve.dataplane import check_json_content_type, header_value, parse_json_body
from src.serve.errors import (
    InvalidInputError,
    TooManyRowsError,
    UnsupportedMediaTypeError,
    validation_message,
)
from src.serve.oip.tensors import (
    BOOL,
    BYTES,
    DATATYPES,
    NUMERIC_DATATYPES,
    binary_from_values,
    element_count,
    values_from_binary,
    values_from_json,
)

if TYPE_CHECKING:
    from src.serve.backends.base import Prediction, Row
    from src.serve.loaded_model import LoadedModel

LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
HEADER_LENGTH = b"inference-header-content-length"
BINARY_MEDIA_TYPE = "application/octet-stream"
MAX_ID_CHARS = 256
#: Request parameters of Triton extensions this server does not implement: refused rather
#: than silently answered differently.
UNSUPPORTED_PARAMETERS = frozenset({"classification", "shared_memory_region"})
FEATURE_DATATYPES = {"number": "FP64", "integer": "INT64", "category": BYTES}


@dataclass(frozen=True)
class RequestedOutput:
    """One output to answer, and whether it goes as binary data."""

    name: str
    binary: bool


@dataclass(frozen=True)
class InferRequest:
    """A decoded inference request: validated rows, the client's ``id``, the outputs."""

    rows: list[Row]
    client_id: str | None
    outputs: tuple[RequestedOutput, ...]


@dataclass(frozen=True)
class InferResponse:
    """The encoded answer; ``json_length`` is set when binary output data follows the JSON
    (it becomes the ``Inference-Header-Content-Length`` header)."""

    body: bytes
    json_length: int | None


@dataclass(frozen=True)
class OutputFacts:
    """What encoding needs of one model, worked out once per model (not per request)."""

    names: tuple[str, ...]
    label_datatype: str
    class_keys: list[str]


def label_datatype(model: LoadedModel) -> str:
    """The datatype of the ``label`` output: the class labels' type, FP64 for regressors."""
    classes = model.metadata.target.classes
    if not model.is_classifier or not classes:
        return "FP64"
    if all(type(c) is bool for c in classes):
        return BOOL
    if all(type(c) is int for c in classes):
        return "INT64"
    if all(type(c) in (int, float) for c in classes):
        return "FP64"
    return BYTES


def class_keys(model: LoadedModel) -> list[str]:
    """The probability keys in the metadata's class order."""
    return [str(c) for c in model.metadata.target.classes or []]


def output_names(model: LoadedModel) -> tuple[str, ...]:
    """The outputs this model answers."""
    if model.backend.has_probabilities and model.metadata.target.classes:
        return (LABEL_OUTPUT, PROBABILITIES_OUTPUT)
    return (LABEL_OUTPUT,)


def _header_length(headers: list[tuple[bytes, bytes]], body_length: int) -> int | None:
    value = header_value(headers, HEADER_LENGTH)
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or not 0 < int(value) <= body_length:
        raise InvalidInputError(
            "Inference-Header-Content-Length must be the length in bytes of the JSON header, "
            f"between 1 and the body length ({body_length})."
        )
    return int(value)


def check_content_type(headers: list[tuple[bytes, bytes]]) -> None:
    """415 unless the body is JSON, or binary-framed (``Inference-Header-Content-Length``)
    JSON plus tensor data declared as ``application/octet-stream`` or JSON; 415 for any
    ``Content-Encoding``."""
    encoding = header_value(headers, b"content-encoding")
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):
        raise UnsupportedMediaTypeError("Compressed request bodies are not supported.")
    content_type = header_value(headers, b"content-type")
    if (
        content_type is not None
        and header_value(headers, HEADER_LENGTH) is not None
        and content_type.split(";", 1)[0].strip().lower() == BINARY_MEDIA_TYPE
    ):
        return
    check_json_content_type(content_type)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if type(value) is not dict:
        raise InvalidInputError(f"{where} must be a JSON object.")
    return value


def _flag(parameters: dict[str, Any], name: str, where: str) -> bool | None:
    value = parameters.get(name)
    if value is not None and type(value) is not bool:
        raise InvalidInputError(f"{where}: parameter {name!r} must be true or false.")
    return value


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: list[int]
    datatype: str
    values: list[Any]


class OipCodec:
    """Decodes inference requests and encodes their answers (see the module docstring);
    the data plane calls :meth:`check_headers`, :meth:`decode` and :meth:`encode`."""

    def __init__(self, max_batch_rows: int) -> None:
        self.max_batch_rows = max_batch_rows
        self._facts: tuple[LoadedModel, OutputFacts] | None = None

    def facts(self, model: LoadedModel) -> OutputFacts:
        """The model's outputs, label datatype and class order (cached for the last model)."""
        cached = self._facts
        if cached is not None and cached[0] is model:
            return cached[1]
        facts = OutputFacts(output_names(model), label_datatype(model), class_keys(model))
        self._facts = (model, facts)
        return facts

    def check_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        """The Content-Type and Content-Encoding checks (415)."""
        check_content_type(headers)

    def decode(
        self, model: LoadedModel, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> InferRequest:
        """The request body -> validated rows, the client's id and the outputs to answer."""
        json_length = _header_length(headers, len(body))
        header, binary = (
            (body, b"")
            if json_length is None
            else (
                body[:json_length],
                memoryview(body)[json_length:],
            )
        )
        request = parse_json_body(header)
        if type(request) is not dict:
            raise InvalidInputError("The inference request must be a JSON object.")
        client_id = request.get("id")
        if client_id is not None and (type(client_id) is not str or len(client_id) > MAX_ID_CHARS):
            raise InvalidInputError(f"'id' must be a string of at most {MAX_ID_CHARS} characters.")
        parameters = _mapping(request.get("parameters"), "'parameters'")
        unsupported = UNSUPPORTED_PARAMETERS.intersection(parameters)
        if unsupported:
            raise InvalidInputError(f"Parameter {sorted(unsupported)[0]!r} is not supported.")
        binary_default = bool(_flag(parameters, "binary_data_output", "'parameters'"))
        outputs = self._outputs(model, request.get("outputs"), binary_default)
        tensors = self._tensors(request.get("inputs"), binary)
        records = self._records(model, tensors)
        try:
            if len(records) == 1:  # the common case: /predict's cheaper one-record check
                rows = [model.schemas.parse_record(records[0])[0]]
            else:
                rows, _ = model.schemas.parse_batch({"records": records}, self.max_batch_rows)
        except InvalidInputError as exc:
            raise _in_row_terms(exc) from None
        return InferRequest(rows, client_id, outputs)

    def _outputs(
        self, model: LoadedModel, requested: Any, binary_default: bool
    ) -> tuple[RequestedOutput, ...]:
        available = self.facts(model).names
        if requested is None:
            return tuple(RequestedOutput(name, binary_default) for name in available)
        if type(requested) is not list or not requested:
            raise InvalidInputError(
                "'outputs' must be a non-empty list of {\"name\": ...} objects."
            )
        chosen: list[RequestedOutput] = []
        for i, item in enumerate(requested):
            where = f"outputs[{i}]"
            if type(item) is not dict or type(item.get("name")) is not str:
                raise InvalidInputError(f"{where} must be an object with a 'name'.")
            name = item["name"]
            if name not in available:
                raise InvalidInputError(
                    f"{where}: model {model.name!r} has no output {name[:64]!r}; its outputs "
                    f"are {', '.join(available)}."
                )
            if any(o.name == name for o in chosen):
                raise InvalidInputError(f"{where}: output {name!r} is requested twice.")
            params = _mapping(item.get("parameters"), f"{where}.parameters")
            if UNSUPPORTED_PARAMETERS.intersection(params):
                raise InvalidInputError(
                    f"{where}: classification and shared memory are not supported."
                )
            binary = _flag(params, "binary_data", where)
            chosen.append(RequestedOutput(name, binary_default if binary is None else binary))
        return tuple(chosen)

    def _tensors(self, inputs: Any, binary: bytes | memoryview) -> list[_Tensor]:
        if type(inputs) is not list or not inputs:
            raise InvalidInputError("'inputs' must be a non-empty list of tensors.")
        tensors = []
        offset = 0
        for i, item in enumerate(inputs):
            where = f"inputs[{i}]"
            if type(item) is not dict or type(item.get("name")) is not str:
                raise InvalidInputError(f"{where} must be a tensor object with a 'name'.")
            where = f"input {item['name'][:64]!r}"
            datatype = item.get("datatype")
            if datatype not in DATATYPES:
                raise InvalidInputError(
                    f"{where}: 'datatype' must be one of {', '.join(sorted(DATATYPES))}."
                )
            count = element_count(item.get("shape"), where)
            if item["shape"][0] > self.max_batch_rows:
                raise TooManyRowsError(
                    f"{where} holds {item['shape'][0]} rows; at most {self.max_batch_rows} are "
                    "accepted (MAX_BATCH_ROWS)."
                )
            params = _mapping(item.get("parameters"), f"{where}: 'parameters'")
            size = params.get("binary_data_size")
            if size is not None:
                if type(size) is not int or size < 0 or offset + size > len(binary):
                    raise InvalidInputError(
                        f"{where}: 'binary_data_size' must be a byte count within the binary "
                        "data that follows the JSON header."
                    )
                if "data" in item:
                    raise InvalidInputError(
                        f"{where}: give either 'data' or binary data, not both."
                    )
                values = values_from_binary(
                    datatype, bytes(binary[offset : offset + size]), count, where
                )
                offset += size
            elif "data" in item:
                values = values_from_json(datatype, item["data"], count, where)
            else:
                raise InvalidInputError(f"{where}: no 'data' and no 'binary_data_size'.")
            tensors.append(_Tensor(item["name"], item["shape"], datatype, values))
        if offset != len(binary):
            raise InvalidInputError(
                f"The body holds {len(binary) - offset} bytes of binary data no input claims "
                "(binary_data_size)."
            )
        return tensors

    def _records(self, model: LoadedModel, tensors: list[_Tensor]) -> list[dict[str, Any]]:
        metadata = model.metadata
        names = metadata.feature_names
        if len(tensors) == 1 and tensors[0].name not in names:
            return _matrix_records(model, tensors[0])
        by_name: dict[str, _Tensor] = {}
        for tensor in tensors:
            if tensor.name not in names:
                raise InvalidInputError(
                    f"Input {tensor.name[:64]!r} is not a feature of model {model.name!r}; send "
                    f"one tensor per feature ({', '.join(names)}) or one [N, {len(names)}] "
                    "tensor."
                )
            if tensor.name in by_name:
                raise InvalidInputError(f"Input {tensor.name!r} is given twice.")
            by_name[tensor.name] = tensor
        missing = [name for name in names if name not in by_name]
        if missing:
            raise InvalidInputError(f"Missing inputs: {', '.join(missing[:10])}.")
        columns = [by_name[name] for name in names]
        rows = columns[0].shape[0]
        for tensor in columns:
            shape = tensor.shape
            if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] != rows:
                raise InvalidInputError(
                    f"Input {tensor.name!r} has shape {shape}: each feature tensor must have "
                    f"shape [N] or [N, 1] with the same N ({rows} here)."
                )
        if rows == 0:
            raise InvalidInputError("The inputs hold no rows.")
        return [
            dict(zip(names, values, strict=True))
            for values in zip(*(t.values for t in columns), strict=True)
        ]

    def encode(
        self,
        model: LoadedModel,
        request: InferRequest,
        predictions: Sequence[Prediction],
        request_id: str,
    ) -> InferResponse:
        """Predictions -> the inference response (JSON, plus binary output data if asked)."""
        outputs = []
        binaries = []
        rows = len(predictions)
        facts = self.facts(model)
        for output in request.outputs:
            if output.name == LABEL_OUTPUT:
                datatype = facts.label_datatype
                shape = [rows]
                values: list[Any] = [p.prediction for p in predictions]
                if datatype == BYTES:
                    values = [str(v) for v in values]
            else:
                keys = facts.class_keys
                datatype = "FP64"
                shape = [rows, len(keys)]
                values = [p.probabilities[k] for p in predictions for k in keys]  # type: ignore[index]
            entry: dict[str, Any] = {"name": output.name, "datatype": datatype, "shape": shape}
            if output.binary:
                raw = binary_from_values(datatype, values)
                entry["parameters"] = {"binary_data_size": len(raw)}
                binaries.append(raw)
            else:
                entry["data"] = values
            outputs.append(entry)
        header = orjson.dumps(
            {
                "model_name": model.name,
                "model_version": model.version,
                "id": request.client_id or request_id,
                "outputs": outputs,
            }
        )
        if binaries:
            return InferResponse(b"".join([header, *binaries]), len(header))
        return InferResponse(header, None)


def _matrix_records(model: LoadedModel, tensor: _Tensor) -> list[dict[str, Any]]:
    names = model.metadata.feature_names
    width = len(names)
    if len(tensor.shape) != 2 or tensor.shape[1] != width or tensor.shape[0] == 0:
        raise InvalidInputError(
            f"Input {tensor.name[:64]!r} has shape {tensor.shape}: one tensor for all features "
            f"must have shape [N, {width}] (N >= 1) in the model's feature order "
            f"({', '.join(names)}); or send one tensor per feature, named after it."
        )
    if tensor.datatype not in NUMERIC_DATATYPES:
        raise InvalidInputError(
            f"Input {tensor.name[:64]!r} is {tensor.datatype}: one tensor for all features must be "
            "numeric (FP16/FP32/FP64/INT*/UINT*)."
        )
    categorical = [f.name for f in model.metadata.features if f.type == "category"]
    if categorical:
        raise InvalidInputError(
            f"Model {model.name!r} has categorical features ({', '.join(categorical[:10])}): "
            "send one tensor per feature, BYTES for the categorical ones."
        )
    values = tensor.values
    return [
        dict(zip(names, values[i : i + width], strict=True)) for i in range(0, len(values), width)
    ]


def _in_row_terms(exc: InvalidInputError) -> InvalidInputError:
    """The schema's error with every field said as ``row[i].<feature>`` (``records[i]`` in
    /predict/batch's wording, the bare feature in /predict's)."""
    if not exc.details:
        return exc
    details = [
        {
            **detail,
            "field": detail["field"].replace("records[", "row[", 1)
            if detail["field"].startswith("records[")
            else f"row[0].{detail['field']}",
        }
        for detail in exc.details
    ]
    return InvalidInputError(validation_message(details, len(details)), details=details)
