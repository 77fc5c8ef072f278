"""Static API models: what the routes answer (responses, errors, health, model info, reload).

/openapi.json describes every response with these. The request models of the loaded model
are built per model in ``model_schemas.py``; the request-id pattern they share with the
``X-Request-ID`` header is defined here, once.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
)

from src.serve.artifact import FeatureSpec
from src.serve.backends.base import Label

#: A client-chosen request id (``X-Request-ID`` header or ``request_id`` body field).
REQUEST_ID_CHARS = r"[A-Za-z0-9._:-]{1,128}"
REQUEST_ID_PATTERN = f"^{REQUEST_ID_CHARS}$"
REQUEST_ID_RE = re.compile(REQUEST_ID_CHARS)
REQUEST_ID_BYTES_RE = re.compile(REQUEST_ID_CHARS.encode("ascii"))

RequestId = Annotated[
    str | None,
    Field(
        default=None,
        pattern=REQUEST_ID_PATTERN,
        description="Optional client id echoed in the response (1-128 of A-Z a-z 0-9 . _ : -).",
    ),
]


class ErrorInfo(BaseModel):
    """What went wrong."""

    code: str = Field(description="Stable machine-readable error code.")
    message: str = Field(description="Human-readable explanation.")
    details: list[dict[str, str]] | None = Field(
        None, description="Per-field problems for invalid input: {field, message}."
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorInfo
    request_id: str | None = Field(description="The request id (also in X-Request-ID).")


class PredictionItem(BaseModel):
    """One row's prediction."""

    prediction: Label = Field(description="Class label (classifiers) or value (regressors).")
    probabilities: dict[str, float] | None = Field(
        description="Class label -> probability (classifiers with probabilities; else null)."
    )


class PredictResponse(PredictionItem):
    """Answer to POST /predict."""

    request_id: str
    model_name: str
    model_version: str
    api_version: str


class BatchPredictResponse(BaseModel):
    """Answer to POST /predict/batch: predictions in the order of the records."""

    request_id: str
    predictions: list[PredictionItem]
    model_name: str
    model_version: str
    api_version: str


class ModelStatus(BaseModel):
    """One served model in ``GET /models`` and ``GET /health``."""

    name: str
    default: bool = Field(description="True for the model behind /predict and /model.")
    follows: str = Field(description="LATEST, alias:<name> or version:<pinned version>.")
    ready: bool
    version: str | None = Field(description="The version serving (None when not ready).")
    backend: str | None = None
    reason: str | None = Field(
        None,
        description="Why it is not ready, or why the newest version tried was refused while "
        "an older one keeps serving.",
    )


class ModelsResponse(BaseModel):
    """``GET /models``: every model this process serves, the default one first."""

    models: list[ModelStatus]
    api_version: str


class HealthResponse(BaseModel):
    """Readiness: 200 with status "ready", or 503 with status "not_ready" and a reason.
    Ready means the default model is serving; ``models`` shows every model's readiness."""

    status: Literal["ready", "not_ready"]
    model_name: str
    model_version: str | None
    api_version: str
    backend: str | None = None
    reason: str | None = None
    models: list[ModelStatus] = Field(default_factory=list)


class LiveResponse(BaseModel):
    """Liveness."""

    status: Literal["alive"]
    api_version: str


class ModelInfoResponse(BaseModel):
    """Metadata of the model being served."""

    model_name: str
    model_version: str
    task: Literal["classification", "regression"]
    trainer_class: str
    backend: str
    created_at: str = Field(description="When the model was trained/published (UTC).")
    loaded_at: str = Field(description="When this process loaded it (UTC).")
    features: list[FeatureSpec]
    target: dict[str, Any]
    metrics: dict[str, Any]
    data: dict[str, Any]
    versions: dict[str, str]
    run: dict[str, Any]
    model_file: dict[str, Any]
    onnx: dict[str, Any] | None
    signing: dict[str, Any] | None
    api_version: str


class ReloadResponse(BaseModel):
    """Outcome of POST /admin/reload."""

    status: Literal["loaded", "unchanged"]
    model_name: str
    model_version: str
    previous_version: str | None
    api_version: str
    models: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Every served model's outcome in this worker: status, version, error.",
    )


#: A prediction id: a request id, or ``<request id>/<row index>`` for a row of a batch.
PREDICTION_ID_PATTERN = f"^{REQUEST_ID_CHARS}(/[0-9]{{1,6}})?$"


class FeedbackEntry(BaseModel):
    """Ground truth for one logged prediction: ``label`` (classifiers) or ``value``
    (regressors), exactly one of them."""

    # The schema states "exactly one of label / value" too, so clients (and the schema fuzz)
    # see the rule the validator below enforces; neither field takes null.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["label"]}, {"required": ["value"]}]},
    )

    request_id: str = Field(
        pattern=PREDICTION_ID_PATTERN,
        description="The prediction's request id (row i of a batch: <request id>/<i>).",
    )
    label: StrictStr | StrictInt = Field(None, description="The true class label.")  # type: ignore[assignment]
    value: float = Field(None, allow_inf_nan=False, description="The true value.")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _one_truth(self) -> FeedbackEntry:
        if (self.label is None) == (self.value is None):
            raise ValueError("send exactly one of 'label' (classifiers) or 'value' (regressors)")
        return self


class FeedbackBatch(BaseModel):
    """Ground truth for many predictions at once."""

    model_config = ConfigDict(extra="forbid")

    items: list[FeedbackEntry] = Field(min_length=1)


def _feedback_shape(body: Any) -> str:
    return "items" if isinstance(body, dict) and "items" in body else "item"


#: ``POST /feedback`` takes one item or ``{"items": [...]}``.
FeedbackBody = Annotated[
    Annotated[FeedbackEntry, Tag("item")] | Annotated[FeedbackBatch, Tag("items")],
    Discriminator(_feedback_shape),
]


class FeedbackRejected(BaseModel):
    """An item whose kind does not fit its prediction's model."""

    request_id: str
    message: str


class FeedbackResponse(BaseModel):
    """What became of each id (docs/feedback.md has the rules)."""

    received: int = Field(description="Items in the request.")
    matched: list[str] = Field(description="Joined with their logged prediction now.")
    unmatched: list[str] = Field(
        description="No logged prediction with this id (yet): kept FEEDBACK_PENDING_SECONDS "
        "and joined if the prediction is logged meanwhile."
    )
    duplicates: list[str] = Field(
        description="Feedback for this id was already received: the first one wins, this "
        "one is ignored."
    )
    rejected: list[FeedbackRejected] = Field(
        description="A label for a regressor or a value for a classifier."
    )
