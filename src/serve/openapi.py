"""OpenAPI that describes the *loaded* model: its feature names, types and an example.

Request bodies are parsed by the data plane (the model can change at run time), so FastAPI
cannot infer them; :func:`install_openapi` replaces ``app.openapi`` with a generator that
injects the current model's request/response schemas and regenerates whenever the served
version changes. The per-model response components have their own names
(``ModelPredictResponse``...): the static ``PredictResponse`` and friends stay as declared.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from src.serve.api_models import ErrorResponse
from src.serve.loaded_model import LoadedModel
from src.serve.model_store import ModelStore

REF = "#/components/schemas/{model}"
NO_MODEL_BODY = {
    "type": "object",
    "description": "No model is loaded yet: fields are the loaded model's feature names.",
}


def _add_component(components: dict[str, Any], model: type[BaseModel]) -> str:
    schema = model.model_json_schema(ref_template=REF)
    for name, definition in {**schema.pop("$defs", {}), model.__name__: schema}.items():
        if components.setdefault(name, definition) != definition:
            raise ValueError(f"OpenAPI component {name!r} would replace another of that name")
    return REF.format(model=model.__name__)


def _set_ok_response(operation: dict[str, Any], ref: str) -> None:
    ok = operation.setdefault("responses", {}).setdefault("200", {})
    ok.setdefault("description", "Successful Response")
    ok["content"] = {"application/json": {"schema": {"$ref": ref}}}


def _body(schema: dict[str, Any], example: Any | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"required": True, "content": {"application/json": content}}


def inject_model_schemas(schema: dict[str, Any], model: LoadedModel | None) -> None:
    """Set the request bodies (and response models) of the prediction routes."""
    paths = schema.get("paths", {})
    predict_op = paths.get("/predict", {}).get("post")
    batch_op = paths.get("/predict/batch", {}).get("post")
    if model is None:
        for op in (predict_op, batch_op):
            if op is not None:
                op["requestBody"] = _body(NO_MODEL_BODY)
        return
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas = model.schemas
    request_ref = _add_component(components, schemas.request)
    batch_ref = _add_component(components, schemas.batch_request)
    response_ref = _add_component(components, schemas.response)
    batch_response_ref = _add_component(components, schemas.batch_response)
    example = schemas.example
    if predict_op is not None:
        predict_op["requestBody"] = _body({"$ref": request_ref}, example)
        _set_ok_response(predict_op, response_ref)
    if batch_op is not None:
        batch_op["requestBody"] = _body({"$ref": batch_ref}, {"records": [example, example]})
        _set_ok_response(batch_op, batch_response_ref)
    schema["info"]["x-model"] = {"name": model.name, "version": model.version}


def use_error_model_for_validation_errors(schema: dict[str, Any]) -> None:
    """Document 422 with the service's own error body, which is what it sends.

    FastAPI adds a 422 with its ``HTTPValidationError`` shape (``{"detail": [...]}``) to every
    route with parameters; the error handler answers ``{"error": {...}, "request_id"}``.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    replaced = False
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            content = (response or {}).get("content", {}).get("application/json", {})
            if content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                content["schema"] = {"$ref": REF.format(model="ErrorResponse")}
                replaced = True
    if replaced:
        components.update(ErrorResponse.model_json_schema(ref_template=REF).pop("$defs", {}))
        components["ErrorResponse"] = ErrorResponse.model_json_schema(ref_template=REF)
        if "HTTPValidationError" not in str(schema.get("paths")):
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)


def install_openapi(app: FastAPI, store: ModelStore) -> None:
    """Make ``app.openapi()`` reflect the model being served."""
    built_for: list[str | None] = []

    def openapi() -> dict[str, Any]:
        model = store.current
        version = model.version if model is not None else None
        if app.openapi_schema is not None and built_for == [version]:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        inject_model_schemas(schema, model)
        use_error_model_for_validation_errors(schema)
        app.openapi_schema = schema
        built_for[:] = [version]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
