"""The Open Inference Protocol's JSON objects, as /openapi.json documents them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Parameters = dict[str, str | int | float | bool]


class OipError(BaseModel):
    """The protocol's error body."""

    error: str = Field(description="What went wrong.")


class ServerMetadata(BaseModel):
    """``GET /v2``."""

    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    """One input or output: name, datatype, shape (``-1``: any number of rows)."""

    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    """``GET /v2/models/{name}``: inputs in feature order, outputs, task and class order."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: Parameters


class RequestInput(BaseModel):
    """One input tensor: ``data`` (nested or flat, row-major) or ``parameters.binary_data_size``
    bytes of the binary data after the JSON header."""

    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = None


class RequestOutput(BaseModel):
    """An output to answer (``label`` or ``probabilities``); ``parameters.binary_data``."""

    name: str
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    """``POST /v2/models/{name}/infer`` (see docs/serving.md for the two input layouts)."""

    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    """One output tensor."""

    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = None


class InferenceResponse(BaseModel):
    """The answer: the request's ``id`` (else the request id), model name and version."""

    model_name: str
    model_version: str
    id: str
    outputs: list[ResponseOutput]
