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
    """Resolve each model's LATEST (or alias, or pin) and, where it differs from the serving
    version, load, verify, warm up and swap it in. Versions that failed before are retried.
    Every other worker of the service is told to do the same at once (docs/serving.md).
    The status code follows the default model; ``models`` has every model's outcome here.
    """
    results = await state.fleet.reload_async(retry_failed=True)
    state.fleet.announce_reload()
    result = results.get(state.store.spec.name)  # None: its reload crashed (logged)
    current = state.store.current
    outcomes = {
        name: {
            "status": outcome.status,
            "model_version": outcome.version,
            "previous_version": outcome.previous_version,
            "error": outcome.error.message if outcome.error else None,
        }
        for name, outcome in results.items()
    }
    if result is not None and result.status in ("loaded", "unchanged") and current is not None:
        request.scope["state"]["model_version"] = current.version
        return json_response(
            {
                "status": result.status,
                "model_name": current.name,
                "model_version": current.version,
                "previous_version": result.previous_version,
                "api_version": state.api_version,
                "models": outcomes,
            }
        )
    reason = result.error.message if result is not None and result.error else "unknown reason"
    if current is None:
        raise ModelNotReadyError(f"No model is loaded: {reason}.")
    raise ReloadFailedError(f"Reload refused: {reason}. Still serving version {current.version}.")
