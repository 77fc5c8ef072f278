"""POST /admin/reload: load the version that should serve now (admin key)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from src.serve.api_models import ReloadResponse
from src.serve.deps import ADMIN_KEY, ServeStateDep
from src.serve.errors import ModelNotReadyError, ReloadFailedError
from src.serve.routes.responses import AUTH_ERRORS, error_doc, json_response

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=ADMIN_KEY)


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses={
        **AUTH_ERRORS,
        409: error_doc("The new version was refused; the previous model keeps serving."),
        503: error_doc("No model could be loaded."),
    },
    summary="Reload the model now",
)
async def reload(request: Request, state: ServeStateDep) -> Response:
    """Resolve LATEST (or the pin) and, if it differs from the serving version, load, verify,
    warm up and swap it in. A version that failed before is retried.
    """
    result = await state.store.reload_async(retry_failed=True)
    current = state.store.current
    if result.status in ("loaded", "unchanged") and current is not None:
        request.scope["state"]["model_version"] = current.version
        return json_response(
            {
                "status": result.status,
                "model_name": current.name,
                "model_version": current.version,
                "previous_version": result.previous_version,
                "api_version": state.api_version,
            }
        )
    reason = result.error.message if result.error else "unknown reason"
    if current is None:
        raise ModelNotReadyError(f"No model is loaded: {reason}.")
    raise ReloadFailedError(f"Reload refused: {reason}. Still serving version {current.version}.")
