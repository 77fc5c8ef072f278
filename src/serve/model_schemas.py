"""The request models of one loaded model, and the parsers the data plane calls.

:func:`build_model_schemas` builds them with ``pydantic.create_model`` from the model's
metadata: one field per feature with its real name and type, ``extra="forbid"``, and an
example (the training medians, :func:`reference_row`). They are built once per model load,
never per request. The static API models live in ``api_models.py``.

A feature whose saved pipeline imputes missing values (``imputed`` in the metadata) may be
null or absent; the row then carries the pipeline's missing marker (NaN for numbers, the
contract's ``MISSING_CATEGORY`` for categories), so every backend and the monitor see the same
thing. Any other feature refuses null/absent with 422 naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from pydantic_core import PydanticCustomError

from src.artifact_contract.layout import MISSING_CATEGORY
from src.serve.api_models import REQUEST_ID_RE, RequestId
from src.serve.artifact import ArtifactMetadata, FeatureSpec
from src.serve.backends.base import Label, NumericRows, Row
from src.serve.errors import (
    InvalidInputError,
    TooManyRowsError,
    validation_details,
    validation_message,
)

MAX_CATEGORY_CHARS = 1024
MAX_ABS_INTEGER = 2**53
# Numbers too: the range where float64 holds every integer exactly. Far beyond any real
# feature, and it keeps scalers and linear models clear of overflow (1e308 would turn the
# probabilities into NaN); /openapi.json documents it as minimum/maximum.
MAX_ABS_NUMBER = float(2**53)
MAX_LISTED_CATEGORIES = 20
BATCH_BODY_KEYS = frozenset({"records", "request_id"})
#: Names of the per-model response components in /openapi.json; distinct from the static
#: ``PredictResponse`` / ``BatchPredictResponse`` / ``PredictionItem`` of ``api_models.py``.
MODEL_RESPONSE_NAMES = ("ModelPredictionItem", "ModelPredictResponse", "ModelBatchPredictResponse")


def _reject_bool_and_str(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def _median(metadata: ArtifactMetadata, name: str) -> float | None:
    ref = metadata.reference.get(name) or {}
    value = (ref.get("quantiles") or {}).get("p50", ref.get("mean"))
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _most_frequent(metadata: ArtifactMetadata, feature: FeatureSpec) -> str:
    allowed = [str(c) for c in feature.categories or []]
    freqs = (metadata.reference.get(feature.name) or {}).get("frequencies") or {}
    ranked = sorted(freqs, key=lambda k: -freqs[k])
    for value in ranked:
        if not allowed or value in allowed:
            return str(value)
    return allowed[0] if allowed else ""


def reference_row(metadata: ArtifactMetadata) -> dict[str, Any]:
    """A typical input: the training median of each numeric feature, the commonest category."""
    row: dict[str, Any] = {}
    for feature in metadata.features:
        if feature.type == "category":
            row[feature.name] = _most_frequent(metadata, feature)
        else:
            median = _median(metadata, feature.name)
            median = 0.0 if median is None else median
            row[feature.name] = round(median) if feature.type == "integer" else median
    return row


def _describe(metadata: ArtifactMetadata, feature: FeatureSpec) -> str:
    ref = metadata.reference.get(feature.name) or {}
    if feature.type == "category":
        if feature.categories and not feature.allow_unknown:
            listed = [str(c) for c in feature.categories]
            more = "" if len(listed) <= MAX_LISTED_CATEGORIES else ", ..."
            return "Category, one of: " + ", ".join(listed[:MAX_LISTED_CATEGORIES]) + more + "."
        return "Category (string); categories unseen in training are accepted."
    kind = "Integer" if feature.type == "integer" else "Number (finite)"
    if isinstance(ref.get("min"), int | float) and isinstance(ref.get("max"), int | float):
        median = _median(metadata, feature.name)
        return f"{kind}. Training range [{ref['min']:g}, {ref['max']:g}]" + (
            f", median {median:g}." if median is not None else "."
        )
    return f"{kind}."


def _feature_type(feature: FeatureSpec) -> Any:
    if feature.type == "number":
        return Annotated[
            float,
            Field(strict=True, allow_inf_nan=False, ge=-MAX_ABS_NUMBER, le=MAX_ABS_NUMBER),
        ]
    if feature.type == "integer":
        return Annotated[
            int,
            BeforeValidator(_reject_bool_and_str),
            Field(ge=-MAX_ABS_INTEGER, le=MAX_ABS_INTEGER),
        ]
    if feature.categories and not feature.allow_unknown:
        return Literal[tuple(str(c) for c in feature.categories)]
    return Annotated[str, Field(strict=True, max_length=MAX_CATEGORY_CHARS)]


def missing_marker(feature: FeatureSpec) -> float | str:
    """What a missing value of ``feature`` becomes in a row: NaN, or the missing category."""
    return MISSING_CATEGORY if feature.type == "category" else math.nan


def _with_missing_markers(
    getter: Callable[[BaseModel], Row], markers: tuple[float | str | None, ...]
) -> Callable[[BaseModel], Row]:
    """``getter`` with each None of an imputed feature replaced by its marker."""

    def row(obj: BaseModel) -> Row:
        values = getter(obj)
        if None not in values:
            return values
        return tuple(
            marker if value is None and marker is not None else value
            for value, marker in zip(values, markers, strict=True)
        )

    return row


def _label_type(classes: list[Any] | None) -> Any:
    if classes and all(isinstance(c, str | int | bool) for c in classes):
        return Literal[tuple(classes)]
    return Label


@dataclass(frozen=True)
class ModelSchemas:
    """The pydantic models of one loaded model, and fast parsers built on them."""

    request: type[BaseModel]
    batch_request: type[BaseModel]
    response: type[BaseModel]
    batch_response: type[BaseModel]
    example: dict[str, Any]
    getter: Callable[[BaseModel], Row]
    #: Feature names when every feature is a plain number: batches are then checked in bulk
    #: (:meth:`_parse_numeric_batch`), with the pydantic model as the fallback for errors.
    numeric_names: tuple[str, ...] | None = None
    #: With ``numeric_names``: True for each feature that may be null (its pipeline imputes it).
    nullable: tuple[bool, ...] = ()

    def parse_record(self, body: Any) -> tuple[Row, str | None]:
        """Validate one /predict body -> (row in feature order, client request id)."""
        try:
            obj = self.request.model_validate(body)
        except ValidationError as exc:
            raise _invalid(exc) from None
        return self.getter(obj), obj.request_id  # type: ignore[attr-defined]

    def parse_batch(self, body: Any, max_rows: int) -> tuple[list[Row], str | None]:
        """Validate one /predict/batch body -> (rows, client request id); 413 over max_rows."""
        if isinstance(body, dict):
            records = body.get("records")
            if isinstance(records, list) and len(records) > max_rows:
                raise TooManyRowsError(
                    f"The batch has {len(records)} records; at most {max_rows} are accepted "
                    "(MAX_BATCH_ROWS)."
                )
        if self.numeric_names is not None:
            parsed = self._parse_numeric_batch(body, max_rows)
            if parsed is not None:
                return parsed
        try:
            obj = self.batch_request.model_validate(body)
        except ValidationError as exc:
            raise _invalid(exc) from None
        getter = self.getter
        return [getter(r) for r in obj.records], obj.request_id  # type: ignore[attr-defined]

    def _parse_numeric_batch(self, body: Any, max_rows: int) -> tuple[list[Row], str | None] | None:
        """The batch of an all-number model checked in bulk (C-level passes and one numpy
        array instead of a pydantic model per record: ~3x faster for 1,000 rows), or None
        whenever anything is unusual - the pydantic model then decides and words the error.

        Accepts exactly what the model accepts: a body of ``records`` (1 to ``max_rows``
        objects, each with exactly the feature names) and an optional valid ``request_id``;
        values that are JSON numbers (not booleans), finite and within +-2**53 once converted
        to float, converted like pydantic does (``5`` -> ``5.0``).
        """
        if type(body) is not dict or not body.keys() <= BATCH_BODY_KEYS:
            return None
        request_id = body.get("request_id")
        if request_id is not None and not (
            type(request_id) is str and REQUEST_ID_RE.fullmatch(request_id)
        ):
            return None
        records = body.get("records")
        names = self.numeric_names
        if type(records) is not list or not 1 <= len(records) <= max_rows or names is None:
            return None
        if set(map(type, records)) != {dict} or set(map(len, records)) != {len(names)}:
            return None
        try:  # exactly the feature names: as many keys as names, and every name present
            if len(names) == 1:
                rows: list[Row] = [(record[names[0]],) for record in records]
            else:
                rows = list(map(itemgetter(*names), records))
        except KeyError:
            return None
        kinds = set(map(type, chain.from_iterable(rows)))
        nulls = type(None) in kinds
        if not kinds <= {float, int, type(None)} or (nulls and not any(self.nullable)):
            return None
        try:  # None -> NaN
            values = np.array(rows, dtype=np.float64)
        except (OverflowError, ValueError, TypeError):
            return None
        finite = np.isfinite(values)
        if nulls:  # a null is NaN here: fine in an imputed column (a JSON number is never NaN)
            missing = np.isnan(values)
            finite |= missing & np.asarray(self.nullable)
            magnitude = np.abs(np.where(missing, 0.0, values))
        else:
            magnitude = np.abs(values)
        if not (finite.all() and magnitude.max() <= MAX_ABS_NUMBER):
            return None
        if int in kinds or nulls:  # pydantic answers floats: 5 -> 5.0; nulls become NaN
            rows = list(map(tuple, values.tolist()))
        return NumericRows(rows, values), request_id


def _invalid(exc: ValidationError) -> InvalidInputError:
    errors = exc.errors(include_input=False, include_url=False)
    details = validation_details(errors)
    return InvalidInputError(validation_message(details, len(errors)), details=details)


def build_model_schemas(
    metadata: ArtifactMetadata,
    *,
    has_probabilities: bool,
    max_batch_rows: int,
    example: dict[str, Any] | None = None,
) -> ModelSchemas:
    """Build the request/response models of one model from its metadata.

    ``example`` is the model's :func:`reference_row` when the caller already computed it.
    """
    if example is None:
        example = reference_row(metadata)
    fields: dict[str, Any] = {}
    internal = []
    for i, feature in enumerate(metadata.features):
        # Internal identifiers keep any feature name (spaces, keywords...) usable as an alias.
        key = f"f{i}"
        internal.append(key)
        description = _describe(metadata, feature)
        if feature.imputed:
            description += " May be null or absent: the model imputes it."
            fields[key] = (
                _feature_type(feature) | None,
                Field(None, alias=feature.name, description=description),
            )
        else:
            fields[key] = (
                _feature_type(feature),
                Field(alias=feature.name, description=description),
            )
    record = create_model(
        "PredictionRecord",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [example]}),
        __doc__=f"One input record of model {metadata.model_name}.",
        **fields,
    )
    request = create_model(
        "PredictRequest",
        __base__=record,
        __doc__=f"One record for model {metadata.model_name}, plus an optional request id.",
        request_id=(RequestId, None),
    )
    batch_request = create_model(
        "BatchPredictRequest",
        __config__=ConfigDict(
            extra="forbid", json_schema_extra={"examples": [{"records": [example, example]}]}
        ),
        __doc__=f"Up to {max_batch_rows} records for model {metadata.model_name}.",
        request_id=(RequestId, None),
        records=(list[record], Field(min_length=1, max_length=max_batch_rows)),  # type: ignore[valid-type]
    )
    label = _label_type(metadata.target.classes) if metadata.task == "classification" else float
    probabilities = dict[str, float] | None if has_probabilities else None
    item_name, response_name, batch_response_name = MODEL_RESPONSE_NAMES
    item = create_model(
        item_name,
        __doc__="One row's prediction.",
        prediction=(label, ...),
        probabilities=(probabilities, ...),
    )
    response = create_model(
        response_name,
        __base__=item,
        __doc__="Answer to POST /predict.",
        request_id=(str, ...),
        model_name=(str, ...),
        model_version=(str, ...),
        api_version=(str, ...),
    )
    batch_response = create_model(
        batch_response_name,
        __doc__="Answer to POST /predict/batch.",
        request_id=(str, ...),
        predictions=(list[item], ...),  # type: ignore[valid-type]
        model_name=(str, ...),
        model_version=(str, ...),
        api_version=(str, ...),
    )
    getter = attrgetter(*internal)
    row_getter: Callable[[BaseModel], Row] = (
        getter if len(internal) > 1 else (lambda obj: (getter(obj),))
    )
    if any(f.imputed for f in metadata.features):
        markers = tuple(missing_marker(f) if f.imputed else None for f in metadata.features)
        row_getter = _with_missing_markers(row_getter, markers)
    all_numbers = all(f.type == "number" for f in metadata.features)
    return ModelSchemas(
        request=request,
        batch_request=batch_request,
        response=response,
        batch_response=batch_response,
        example=example,
        getter=row_getter,
        numeric_names=tuple(metadata.feature_names) if all_numbers else None,
        nullable=tuple(f.imputed for f in metadata.features) if all_numbers else (),
    )
