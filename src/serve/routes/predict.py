"""POST /predict and POST /predict/batch through FastAPI: adapters of the data plane.

The service answers these two paths with the lean adapter (``lean_predict.py``); these routes
document them in /openapi.json and answer the requests the lean dispatch does not take.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from src.serve.api_models import BatchPredictResponse, PredictResponse
from src.serve.deps import KEY_SCHEMES, DataPlaneDep
from src.serve.routes.responses import PREDICT_ERRORS

router = APIRouter(tags=["predictions"], dependencies=KEY_SCHEMES)


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=PREDICT_ERRORS,
    summary="Predict one record",
)
async def predict(request: Request, dataplane: DataPlaneDep) -> Response:
    """One record whose fields are the model's features (see the request schema), plus an
    optional ``request_id``. Answers the prediction and, for classifiers, class probabilities.
    """
    body = await dataplane.predict(request.scope, request.receive)
    return Response(body, media_type="application/json")


@router.post(
    "/predict/batch",
    response_model=BatchPredictResponse,
    responses=PREDICT_ERRORS,
    summary="Predict a batch of records",
)
async def predict_batch(request: Request, dataplane: DataPlaneDep) -> Response:
    """``{"request_id"?, "records": [...]}`` with 1 to ``MAX_BATCH_ROWS`` records; answers
    one prediction per record, in order. Invalid rows are reported by index (422).
    """
    body = await dataplane.predict_batch(request.scope, request.receive)
    return Response(body, media_type="application/json")
