"""The Open Inference Protocol codec: both input layouts, JSON and binary, outputs, errors."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import orjson
import pytest

from src.serve.errors import InvalidInputError, TooManyRowsError, UnsupportedMediaTypeError
from src.serve.loaded_model import LoadedModel
from src.serve.oip.codec import InferRequest, OipCodec, check_content_type

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
HEADER = b"inference-header-content-length"
codec = OipCodec(max_batch_rows=5)


def decode(model: LoadedModel, request: dict[str, Any], binary: bytes = b"") -> InferRequest:
    header = orjson.dumps(request)
    headers = [(HEADER, str(len(header)).encode())] if binary else []
    return codec.decode(model, headers, header + binary)


def per_feature(names: list[str], rows: list[list[Any]], datatype: str = "FP64") -> list[dict]:
    return [
        {"name": name, "shape": [len(rows)], "datatype": datatype, "data": [r[i] for r in rows]}
        for i, name in enumerate(names)
    ]


def bytes_tensor(values: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def split_binary(body: bytes, json_length: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    header = orjson.loads(body[:json_length])
    buffers, offset = {}, json_length
    for output in header["outputs"]:
        if "data" in output:
            continue
        size = output["parameters"]["binary_data_size"]
        buffers[output["name"]] = body[offset : offset + size]
        offset += size
    assert offset == len(body)
    return header, buffers


# --- input layouts -------------------------------------------------------------------------


@pytest.mark.parametrize("nested", [True, False])
def test_matrix_layout_json(iris_model, nested):
    data = [SETOSA, VIRGINICA] if nested else SETOSA + VIRGINICA
    request = decode(
        iris_model,
        {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP64", "data": data}]},
    )
    assert request.rows == [tuple(SETOSA), tuple(VIRGINICA)]
    assert [o.name for o in request.outputs] == ["label", "probabilities"]
    assert not any(o.binary for o in request.outputs)


@pytest.mark.parametrize("shape_tail", [[], [1]])
def test_per_feature_layout_json(iris_model, shape_tail):
    inputs = per_feature(IRIS, [SETOSA, VIRGINICA])
    for tensor in reversed(inputs):  # any order of the tensors
        tensor["shape"] = [2, *shape_tail]
    request = decode(iris_model, {"inputs": list(reversed(inputs))})
    assert request.rows == [tuple(SETOSA), tuple(VIRGINICA)]


def test_integer_tensor_feeds_number_features(iris_model):
    request = decode(
        iris_model,
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT32", "data": [5, 3, 1, 0]}]},
    )
    assert request.rows == [(5.0, 3.0, 1.0, 0.0)]


def test_matrix_layout_binary_fp32(iris_model):
    raw = np.array([SETOSA, VIRGINICA], dtype="<f4").tobytes()
    request = decode(
        iris_model,
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [2, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        },
        raw,
    )
    expected = np.array([SETOSA, VIRGINICA], dtype=np.float32).astype(np.float64).tolist()
    assert request.rows == [tuple(r) for r in expected]


def test_per_feature_binary_with_bytes_for_categories(house_model):
    area = np.array([80.5, 120.0], dtype="<f8").tobytes()
    rooms = np.array([3, 4], dtype="<i8").tobytes()
    district = bytes_tensor(["north", "east"])
    request = decode(
        house_model,
        {
            "inputs": [
                {
                    "name": "area_sqm",
                    "shape": [2],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": len(area)},
                },
                {
                    "name": "rooms",
                    "shape": [2, 1],
                    "datatype": "INT64",
                    "parameters": {"binary_data_size": len(rooms)},
                },
                {
                    "name": "district",
                    "shape": [2],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(district)},
                },
            ]
        },
        area + rooms + district,
    )
    assert request.rows == [(80.5, 3, "north"), (120.0, 4, "east")]


def test_json_and_binary_inputs_mix(house_model):
    district = bytes_tensor(["south"])
    request = decode(
        house_model,
        {
            "inputs": [
                {"name": "area_sqm", "shape": [1], "datatype": "FP64", "data": [60]},
                {
                    "name": "district",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(district)},
                },
                {"name": "rooms", "shape": [1], "datatype": "INT64", "data": [2]},
            ]
        },
        district,
    )
    assert request.rows == [(60.0, 2, "south")]


# --- outputs ---------------------------------------------------------------------------------


def test_classifier_outputs_json_match_backend(iris_model):
    request = decode(iris_model, {"id": "req-7", "inputs": per_feature(IRIS, [SETOSA, VIRGINICA])})
    predictions = iris_model.backend.predict(request.rows)
    answer = codec.encode(iris_model, request, predictions, "generated")
    assert answer.json_length is None
    body = orjson.loads(answer.body)
    assert body["id"] == "req-7"
    assert body["model_name"] == "iris_classifier"
    assert body["model_version"] == iris_model.version
    label, proba = body["outputs"]
    assert label == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["setosa", "virginica"],
    }
    classes = [str(c) for c in iris_model.metadata.target.classes]
    assert proba["shape"] == [2, 3]
    assert proba["datatype"] == "FP64"
    assert proba["data"] == [p.probabilities[c] for p in predictions for c in classes]


def test_request_id_answers_when_no_id(iris_model):
    request = decode(iris_model, {"inputs": per_feature(IRIS, [SETOSA])})
    answer = codec.encode(iris_model, request, iris_model.backend.predict(request.rows), "rid-1")
    assert orjson.loads(answer.body)["id"] == "rid-1"


def test_outputs_selects_and_orders(iris_model):
    request = decode(
        iris_model,
        {"inputs": per_feature(IRIS, [SETOSA]), "outputs": [{"name": "probabilities"}]},
    )
    answer = codec.encode(iris_model, request, iris_model.backend.predict(request.rows), "r")
    assert [o["name"] for o in orjson.loads(answer.body)["outputs"]] == ["probabilities"]


def test_binary_outputs_all(iris_model):
    request = decode(
        iris_model,
        {
            "inputs": per_feature(IRIS, [SETOSA, VIRGINICA]),
            "parameters": {"binary_data_output": True},
        },
    )
    predictions = iris_model.backend.predict(request.rows)
    answer = codec.encode(iris_model, request, predictions, "r")
    assert answer.json_length is not None
    header, buffers = split_binary(answer.body, answer.json_length)
    assert all("data" not in o for o in header["outputs"])
    assert buffers["label"] == bytes_tensor(["setosa", "virginica"])
    proba = np.frombuffer(buffers["probabilities"], dtype="<f8").reshape(2, 3)
    classes = [str(c) for c in iris_model.metadata.target.classes]
    assert proba.tolist() == [[p.probabilities[c] for c in classes] for p in predictions]


def test_per_output_binary_overrides_default(iris_model):
    request = decode(
        iris_model,
        {
            "inputs": per_feature(IRIS, [SETOSA]),
            "parameters": {"binary_data_output": True},
            "outputs": [
                {"name": "label", "parameters": {"binary_data": False}},
                {"name": "probabilities"},
            ],
        },
    )
    answer = codec.encode(iris_model, request, iris_model.backend.predict(request.rows), "r")
    header, buffers = split_binary(answer.body, answer.json_length)
    assert header["outputs"][0]["data"] == ["setosa"]
    assert set(buffers) == {"probabilities"}


def test_regressor_label_is_fp64_only(house_model):
    request = decode(
        house_model,
        {
            "inputs": [
                {"name": "area_sqm", "shape": [1], "datatype": "FP64", "data": [100.0]},
                {"name": "rooms", "shape": [1], "datatype": "INT64", "data": [3]},
                {"name": "district", "shape": [1], "datatype": "BYTES", "data": ["north"]},
            ],
            "parameters": {"binary_data_output": True},
        },
    )
    predictions = house_model.backend.predict(request.rows)
    answer = codec.encode(house_model, request, predictions, "r")
    header, buffers = split_binary(answer.body, answer.json_length)
    assert [(o["name"], o["datatype"], o["shape"]) for o in header["outputs"]] == [
        ("label", "FP64", [1])
    ]
    assert np.frombuffer(buffers["label"], dtype="<f8").tolist() == [predictions[0].prediction]


# --- errors ----------------------------------------------------------------------------------

GOOD = {"inputs": per_feature(IRIS, [SETOSA])}


def with_input(**changes: Any) -> dict[str, Any]:
    tensor = {"name": "input", "shape": [1, 4], "datatype": "FP64", "data": SETOSA, **changes}
    return {"inputs": [tensor]}


@pytest.mark.parametrize(
    ("request_body", "match"),
    [
        ([], "must be a JSON object"),
        ({}, "'inputs' must be a non-empty list"),
        ({"inputs": []}, "'inputs' must be a non-empty list"),
        ({"inputs": [5]}, "must be a tensor object"),
        (with_input(datatype="FP128"), "'datatype' must be one of"),
        (with_input(shape=[1, -4]), "'shape' must be a non-empty list"),
        (with_input(shape="1,4"), "'shape' must be a non-empty list"),
        (with_input(data=SETOSA[:3]), "holds 3 elements; its shape needs 4"),
        (with_input(shape=[1, 3], data=SETOSA[:3]), r"must have shape \[N, 4\]"),
        (with_input(shape=[0, 4], data=[]), r"must have shape \[N, 4\]"),
        (with_input(datatype="BYTES", data=["a", "b", "c", "d"]), "must be numeric"),
        (with_input(datatype="BOOL", data=[True, False, True, True]), "must be numeric"),
        (with_input(data=[5.1, "3.5", 1.4, 0.2]), "is not a FP64 value"),
        (with_input(data=[5.1, True, 1.4, 0.2]), "is not a FP64 value"),
        (with_input(datatype="INT64", data=[5.5, 3, 1, 0]), "is not a INT64 value"),
        (with_input(data=None), "holds 1 elements"),
        (
            with_input(parameters={"binary_data_size": 32}),
            "'binary_data_size' must be a byte count",
        ),
        (dict(with_input().items()) | {"id": 7}, "'id' must be a string"),
        (GOOD | {"parameters": []}, "'parameters' must be a JSON object"),
        (GOOD | {"parameters": {"binary_data_output": "yes"}}, "must be true or false"),
        (GOOD | {"parameters": {"classification": 2}}, "'classification' is not supported"),
        (GOOD | {"outputs": []}, "'outputs' must be a non-empty list"),
        (GOOD | {"outputs": [{"name": "proba"}]}, "has no output 'proba'"),
        (GOOD | {"outputs": [{"name": "label"}, {"name": "label"}]}, "requested twice"),
        ({"inputs": [{"name": "sepal_length", "shape": [1], "datatype": "FP64"}]}, "no 'data'"),
        ({"inputs": per_feature(IRIS[:3], [SETOSA[:3]])}, "Missing inputs: petal_width"),
        ({"inputs": per_feature([*IRIS, "colour"], [[*SETOSA, 1.0]])}, "'colour' is not a feature"),
        ({"inputs": per_feature([*IRIS, "petal_width"], [[*SETOSA, 1.0]])}, "given twice"),
        ({"inputs": per_feature(IRIS, [SETOSA], "BYTES")}, "is not a BYTES value"),
        (
            {
                "inputs": [
                    {**t, "shape": [1, 2], "data": t["data"] * 2}
                    for t in per_feature(IRIS, [SETOSA])
                ]
            },
            r"\[N\] or \[N, 1\]",
        ),
        (
            {
                "inputs": per_feature(IRIS[:1], [SETOSA[:1], SETOSA[:1]])
                + per_feature(IRIS[1:], [SETOSA[1:]])
            },
            "the same N",
        ),
        ({"inputs": per_feature(IRIS, [[5.1, 3.5, 1.4, 2.0**60]])}, r"row\[0\].petal_width"),
    ],
)
def test_bad_requests_are_invalid_input(iris_model, request_body, match):
    with pytest.raises(InvalidInputError, match=match):
        decode(iris_model, request_body)


def test_not_json(iris_model):
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        codec.decode(iris_model, [], b"{nope")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_binary_values_are_invalid(iris_model, value):
    raw = np.array([[5.1, value, 1.4, 0.2]], dtype="<f8").tobytes()
    tensor = {
        "name": "input",
        "shape": [1, 4],
        "datatype": "FP64",
        "parameters": {"binary_data_size": 32},
    }
    with pytest.raises(InvalidInputError, match=r"row\[0\].sepal_width"):
        decode(iris_model, {"inputs": [tensor]}, raw)


def test_bool_tensor_for_numbers_is_invalid(iris_model):
    inputs = per_feature(IRIS, [SETOSA])
    inputs[0] = {"name": "sepal_length", "shape": [1], "datatype": "BOOL", "data": [True]}
    with pytest.raises(InvalidInputError, match=r"row\[0\].sepal_length"):
        decode(iris_model, {"inputs": inputs})


def house_inputs(
    area: Any = 80.0, rooms: Any = 3, district: Any = "north", rooms_type: str = "INT64"
) -> dict:
    return {
        "inputs": [
            {"name": "area_sqm", "shape": [1], "datatype": "FP64", "data": [area]},
            {"name": "rooms", "shape": [1], "datatype": rooms_type, "data": [rooms]},
            {"name": "district", "shape": [1], "datatype": "BYTES", "data": [district]},
        ]
    }


def test_unknown_category_is_invalid(house_model):
    with pytest.raises(InvalidInputError, match=r"row\[0\].district"):
        decode(house_model, house_inputs(district="west"))


def test_fractional_integer_feature_is_invalid(house_model):
    with pytest.raises(InvalidInputError, match=r"row\[0\].rooms"):
        decode(house_model, house_inputs(rooms=2.5, rooms_type="FP64"))
    assert decode(house_model, house_inputs(rooms=2.0, rooms_type="FP64")).rows == [
        (80.0, 2, "north")
    ]


def test_matrix_layout_refused_for_categorical_models(house_model):
    tensor = {"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [80.0, 3, 1]}
    with pytest.raises(InvalidInputError, match="categorical features"):
        decode(house_model, {"inputs": [tensor]})


def test_too_many_rows_is_413(iris_model):
    with pytest.raises(TooManyRowsError, match="at most 5"):
        decode(iris_model, with_input(shape=[6, 4], data=SETOSA * 6))


@pytest.mark.parametrize(
    ("binary", "size", "match"),
    [
        (bytes_tensor(["north"]) + b"x", None, "no input claims"),
        (bytes_tensor(["north"])[:-1], None, "ends inside a BYTES element"),
        (b"\x05\x00", None, "ends inside a BYTES element"),
        (struct.pack("<I", 2) + b"\xff\xfe", None, "not UTF-8"),
        (bytes_tensor(["north", "south"]), None, "more than 1 BYTES elements"),
    ],
)
def test_malformed_binary_data(house_model, binary, size, match):
    request = house_inputs()
    request["inputs"][2] = {
        "name": "district",
        "shape": [1],
        "datatype": "BYTES",
        "parameters": {
            "binary_data_size": size
            if size is not None
            else len(binary) - (match == "no input claims")
        },
    }
    with pytest.raises(InvalidInputError, match=match):
        decode(house_model, request, binary)


def test_binary_size_must_match_fixed_size_elements(iris_model):
    raw = np.array([SETOSA], dtype="<f4").tobytes()
    tensor = {
        "name": "input",
        "shape": [1, 4],
        "datatype": "FP64",
        "parameters": {"binary_data_size": 16},
    }
    with pytest.raises(InvalidInputError, match="16 bytes of binary data; 4 FP64 elements take 32"):
        decode(iris_model, {"inputs": [tensor]}, raw)


def test_data_and_binary_together_are_refused(iris_model):
    raw = np.array([SETOSA], dtype="<f8").tobytes()
    body = with_input(parameters={"binary_data_size": 32})
    with pytest.raises(InvalidInputError, match="either 'data' or binary data"):
        decode(iris_model, body, raw)


@pytest.mark.parametrize("value", [b"0", b"abc", b"999999", b"-3"])
def test_bad_header_length(iris_model, value):
    with pytest.raises(InvalidInputError, match="Inference-Header-Content-Length"):
        codec.decode(iris_model, [(HEADER, value)], orjson.dumps(GOOD))


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"content-type", b"application/json")],
        [(b"content-type", b"application/octet-stream"), (HEADER, b"10")],
        [(b"content-type", b"application/json"), (HEADER, b"10")],
    ],
)
def test_accepted_content_types(headers):
    check_content_type(headers)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-type", b"text/plain")],
        [(b"content-type", b"application/octet-stream")],
        [(b"content-encoding", b"gzip")],
    ],
)
def test_refused_content_types(headers):
    with pytest.raises(UnsupportedMediaTypeError):
        check_content_type(headers)
