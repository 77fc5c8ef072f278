"""The data plane: the one handler of inference requests.

Every step of ``POST /predict`` and ``POST /predict/batch`` is written here once, in this
order: API key and rate limit (``auth.py``), the serving model and its readiness (503), the
Content-Type (415), the JSON body (422), the model's request schema (422, or 413 over
``MAX_BATCH_ROWS``), announcing a single row to the inference service (the micro-batcher waits
for rows on their way), inference, the finite-output check (422 ``unscorable_input``) and the
response body (orjson bytes), after the answered rows are handed to the prediction log
(``predlog/``, when ``PREDICTION_LOG_ENABLED``).

The adapters only translate: the plain-ASGI ``LeanPredict`` (``lean_predict.py``, what serves
nearly all traffic) and the FastAPI routes of ``routes/predict.py`` (what /openapi.json
documents) both call :meth:`DataPlane.predict` / :meth:`DataPlane.predict_batch` with the ASGI
``scope`` and ``receive``. Errors are :class:`~src.serve.errors.ServeError` exceptions,
rendered by ``errors.py`` (through the request-context middleware or FastAPI's handlers).

Other wire protocols call :meth:`DataPlane.infer` with a :class:`RequestCodec` (their header
checks, decoding and encoding; ``oip/codec.py`` for the Open Inference Protocol): the same
steps in the same order, with decode -> infer -> encode in place of the JSON schema and body.

The hot path avoids FastAPI ``Request`` objects and per-request allocations it can skip:
headers are read from the raw ASGI list, the body is parsed and the answer serialised with
orjson.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from src.serve.backends.base import Predictions
from src.serve.errors import (
    MAX_ERROR_DETAILS,
    InvalidJSONError,
    ModelNotReadyError,
    NotFoundError,
    UnscorableInputError,
    UnsupportedMediaTypeError,
)
from src.serve.logging_setup import REQUEST_ID

if TYPE_CHECKING:
    from src.serve.backends.base import Prediction, Row
    from src.serve.loaded_model import LoadedModel
    from src.serve.state import ServeState

MAX_SHOWN_MEDIA_TYPE = 64
Decoded = TypeVar("Decoded", bound="DecodedRequest")
Encoded = TypeVar("Encoded")


class DecodedRequest(Protocol):
    """What a protocol's decoder hands the data plane: validated rows in feature order."""

    @property
    def rows(self) -> Sequence[Any]:
        """The rows to predict."""
        ...


class RequestCodec(Protocol[Decoded, Encoded]):
    """A wire protocol's own steps around :meth:`DataPlane.infer`: header checks, decoding
    the body into validated rows, encoding the predictions (e.g. ``oip/codec.py``)."""

    def check_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Refuse a body the protocol cannot read (415), before it is read."""
        ...

    def decode(
        self, model: LoadedModel, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Decoded:
        """The body -> validated rows (4xx ``ServeError`` when they are not)."""
        ...

    def encode(
        self,
        model: LoadedModel,
        request: Decoded,
        predictions: Sequence[Prediction],
        request_id: str,
    ) -> Encoded:
        """The predictions -> the protocol's answer."""
        ...


def header_value(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first header called ``name`` (lower-case bytes), decoded as latin-1."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def check_json_content_type(content_type: str | None) -> None:
    """415 unless the declared media type is JSON (a missing Content-Type counts as JSON)."""
    if content_type is None or content_type == "application/json":  # what nearly all send
        return
    if not _is_json_media_type(content_type):
        media = content_type.split(";", 1)[0].strip()
        shown = f" {media!r}" if len(media) <= MAX_SHOWN_MEDIA_TYPE and media.isprintable() else ""
        raise UnsupportedMediaTypeError(
            f"Content-Type{shown} is not supported: send a JSON body with "
            "'Content-Type: application/json'."
        )


async def read_body(receive: Receive) -> bytes:
    """The whole request body, as ``Request.body()`` reads it (``MAX_BODY_BYTES`` is enforced
    by the ``receive`` the request-context middleware hands down)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if not message.get("more_body", False):
                return b"".join((*chunks, chunk)) if chunks else chunk  # usually one message
            if chunk:
                chunks.append(chunk)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def parse_json_body(body: bytes) -> Any:
    """The body parsed with orjson; 422 when empty or not JSON."""
    if not body or body.isspace():  # (no stripped copy of every body)
        raise InvalidJSONError("Request body is empty: send a JSON object.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSONError(f"Request body is not valid JSON: {exc}.") from None


def _is_finite(prediction: Prediction) -> bool:
    value = prediction.prediction
    if isinstance(value, float) and not math.isfinite(value):
        return False
    probabilities = prediction.probabilities
    return probabilities is None or all(map(math.isfinite, probabilities.values()))


def ensure_finite(predictions: Sequence[Prediction], *, batch: bool) -> None:
    """Raise :class:`UnscorableInputError` (422) when any prediction is NaN or infinite: a
    model's non-finite answer to a valid, bounded input is never sent as a 200 (or a 500)."""
    if isinstance(predictions, Predictions) and predictions.all_finite:
        return  # the backend checked its output arrays in one pass
    if all(map(_is_finite, predictions)):  # the common case, in C-level loops (hot path)
        return
    bad = [i for i, prediction in enumerate(predictions) if not _is_finite(prediction)]
    details = [
        {
            "field": f"records[{i}]" if batch else "body",
            "message": "The model's output for this record is not finite",
        }
        for i in bad[:MAX_ERROR_DETAILS]
    ]
    raise UnscorableInputError(details=details)


def adopt_request_id(scope: Scope, client_id: str | None) -> str:
    """The request's id: a valid ``request_id`` from the body (already checked by the schema,
    same rule as the header) replaces the middleware's, so ``X-Request-ID``, error bodies,
    the access log and later log lines name it too."""
    state = scope["state"]
    if client_id is not None:
        state["request_id"] = client_id
        REQUEST_ID.set(client_id)  # log lines from here on name it too
    return str(state["request_id"])


class DataPlane:
    """Answers inference requests for the models this process serves (see the module
    docstring). ``model_name`` selects a model (``fleet.py``); ``None`` means the default one."""

    def __init__(self, state: ServeState) -> None:
        self.state = state
        self._auth = state.auth
        self._fleet = state.fleet
        self._inference = state.inference
        self._api_version = state.api_version
        self._max_batch_rows = state.settings.max_batch_rows
        self._prediction_log = state.prediction_log

    def ready_model(self, scope: Scope, model_name: str | None = None) -> LoadedModel:
        """The serving version of ``model_name`` (the default model for None), pinned for this
        request (its version labels the response and the log line); :class:`NotFoundError`
        (404) for a model not served here, :class:`ModelNotReadyError` (503) with the reason
        for one that is not loaded."""
        store = self._fleet.store(model_name)
        if store is None:
            raise NotFoundError(f"No model named {model_name!r} is served here.")
        model = store.current
        if model is None:
            reason = store.not_ready_reason
            if model_name is None:
                raise ModelNotReadyError(f"No model is loaded: {reason}.")
            raise ModelNotReadyError(f"Model {model_name!r} is not ready: {reason}.")
        scope["state"]["model_version"] = model.version
        return model

    def log_predictions(
        self,
        model: LoadedModel,
        request_id: str,
        rows: Sequence[Row],
        results: Sequence[Prediction],
        started: float,
        *,
        batch: bool,
    ) -> None:
        """The prediction-log step of every answered request (``predlog/``; a no-op when
        ``PREDICTION_LOG_ENABLED=false``). Row ``i`` of a batch is logged as
        ``<request_id>/<i>``."""
        if self._prediction_log is not None:
            self._prediction_log.record(
                model, request_id, rows, results, time.perf_counter() - started, batch=batch
            )

    def ready_model_version(
        self, scope: Scope, model_name: str | None, model_version: str | None
    ) -> LoadedModel:
        """:meth:`ready_model`, and 404 when ``model_version`` is given and is not the version
        being served."""
        model = self.ready_model(scope, model_name)
        if model_version is not None and model_version != model.version:
            raise NotFoundError(
                f"Model {model.name!r} has no version {model_version[:64]!r} here; it serves "
                f"version {model.version}."
            )
        return model

    def _admit(self, scope: Scope, model_name: str | None) -> LoadedModel:
        """Key and rate limit, the model (503), then a JSON Content-Type (415)."""
        headers = scope["headers"]
        self._auth.check_headers(headers)
        model = self.ready_model(scope, model_name)
        check_json_content_type(header_value(headers, b"content-type"))
        return model

    async def predict(self, scope: Scope, receive: Receive, model_name: str | None = None) -> bytes:
        """``POST /predict``: one record -> the JSON answer (bytes)."""
        started = time.perf_counter()
        inference = self._inference
        inference.row_arriving()
        try:
            model = self._admit(scope, model_name)
            row, client_id = model.schemas.parse_record(parse_json_body(await read_body(receive)))
        finally:
            inference.row_arrived()
        request_id = adopt_request_id(scope, client_id)
        (result,) = await inference.infer(model, [row])
        ensure_finite((result,), batch=False)
        self.log_predictions(model, request_id, (row,), (result,), started, batch=False)
        return orjson.dumps(
            {
                "request_id": request_id,
                "prediction": result.prediction,
                "probabilities": result.probabilities,
                "model_name": model.name,
                "model_version": model.version,
                "api_version": self._api_version,
            }
        )

    async def predict_batch(
        self, scope: Scope, receive: Receive, model_name: str | None = None
    ) -> bytes:
        """``POST /predict/batch``: up to ``MAX_BATCH_ROWS`` records -> the JSON answer."""
        started = time.perf_counter()
        model = self._admit(scope, model_name)
        body = parse_json_body(await read_body(receive))
        rows, client_id = model.schemas.parse_batch(body, self._max_batch_rows)
        request_id = adopt_request_id(scope, client_id)
        results = await self._inference.infer(model, rows)
        ensure_finite(results, batch=True)
        self.log_predictions(model, request_id, rows, results, started, batch=True)
        return orjson.dumps(
            {
                "request_id": request_id,
                "predictions": [
                    {"prediction": r.prediction, "probabilities": r.probabilities} for r in results
                ],
                "model_name": model.name,
                "model_version": model.version,
                "api_version": self._api_version,
            }
        )

    async def infer(
        self,
        scope: Scope,
        receive: Receive,
        codec: RequestCodec[Decoded, Encoded],
        model_name: str | None = None,
        model_version: str | None = None,
    ) -> Encoded:
        """Another protocol's inference request (decode -> infer -> encode), with the steps of
        :meth:`predict_batch` in the same order: key and rate limit, the model (503; 404 for
        an unknown name or version), the codec's header checks, the body, the codec's
        decoding, inference, the finite-output check, the codec's encoding.

        The row is announced like ``/predict``'s: most such requests carry one row, and a
        larger one only tells the micro-batcher to expect company that does not come.
        """
        started = time.perf_counter()
        inference = self._inference
        inference.row_arriving()
        try:
            headers = scope["headers"]
            self._auth.check_headers(headers)
            model = self.ready_model_version(scope, model_name, model_version)
            codec.check_headers(headers)
            request = codec.decode(model, headers, await read_body(receive))
        finally:
            inference.row_arrived()
        results = await inference.infer(model, request.rows)
        batch = len(results) > 1
        ensure_finite(results, batch=batch)
        request_id = scope["state"]["request_id"]
        self.log_predictions(model, request_id, request.rows, results, started, batch=batch)
        return codec.encode(model, request, results, request_id)
