"""POST /predict and POST /predict/batch."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from src.serve.auth import require_api_key
from src.serve.guards import ensure_finite
from src.serve.routes.common import (
    PREDICT_ERRORS,
    current_model,
    json_response,
    read_json,
    request_id,
    serve_state,
)
from src.serve.schemas import BatchPredictResponse, PredictResponse

router = APIRouter(tags=["predictions"], dependencies=[Depends(require_api_key)])


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=PREDICT_ERRORS,
    summary="Predict one record",
)
async def predict(request: Request) -> Response:
    """One record whose fields are the model's features (see the request schema), plus an
    optional ``request_id``. Answers the prediction and, for classifiers, class probabilities.
    """
    state = serve_state(request)
    model = current_model(request)
    row, client_id = model.schemas.parse_record(await read_json(request))
    (result,) = await state.inference.infer(model, [row])
    ensure_finite([result], batch=False)
    return json_response(
        {
            "request_id": client_id or request_id(request),
            "prediction": result.prediction,
            "probabilities": result.probabilities,
            "model_name": model.name,
            "model_version": model.version,
            "api_version": state.api_version,
        }
    )


@router.post(
    "/predict/batch",
    response_model=BatchPredictResponse,
    responses=PREDICT_ERRORS,
    summary="Predict a batch of records",
)
async def predict_batch(request: Request) -> Response:
    """``{"request_id"?, "records": [...]}`` with 1 to ``MAX_BATCH_ROWS`` records; answers
    one prediction per record, in order. Invalid rows are reported by index (422).
    """
    state = serve_state(request)
    model = current_model(request)
    body = await read_json(request)
    rows, client_id = model.schemas.parse_batch(body, state.settings.max_batch_rows)
    results = await state.inference.infer(model, rows)
    ensure_finite(results, batch=True)
    return json_response(
        {
            "request_id": client_id or request_id(request),
            "predictions": [
                {"prediction": r.prediction, "probabilities": r.probabilities} for r in results
            ],
            "model_name": model.name,
            "model_version": model.version,
            "api_version": state.api_version,
        }
    )
