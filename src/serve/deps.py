"""FastAPI dependencies of the routes, as ``Annotated`` aliases.

A route declares what it needs as a parameter (``state: ServeStateDep``,
``model: CurrentModelDep``) or, for a check with no value, in its ``dependencies``
(:data:`API_KEY`, :data:`ADMIN_KEY`). The key check and model readiness are the data plane's
and the authenticator's own steps; nothing here re-implements them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.params import Depends as DependsParam

from src.serve.auth import api_key_scheme, bearer_scheme
from src.serve.dataplane import DataPlane
from src.serve.loaded_model import LoadedModel
from src.serve.state import ServeState


async def get_serve_state(request: Request) -> ServeState:
    """The app's shared objects."""
    return request.app.state.serve


async def get_dataplane(request: Request) -> DataPlane:
    """The app's data plane."""
    return request.app.state.dataplane


async def current_model(request: Request, dataplane: DataPlaneDep) -> LoadedModel:
    """The serving model, pinned for this request, or 503 with the reason."""
    return dataplane.ready_model(request.scope)


async def require_api_key(request: Request, state: ServeStateDep) -> None:
    """An API key (or admin key) is required."""
    state.auth.check_headers(request.scope["headers"])


async def require_admin_key(request: Request, state: ServeStateDep) -> None:
    """An admin key is required."""
    state.auth.check_headers(request.scope["headers"], admin=True)


ServeStateDep = Annotated[ServeState, Depends(get_serve_state)]
DataPlaneDep = Annotated[DataPlane, Depends(get_dataplane)]
CurrentModelDep = Annotated[LoadedModel, Depends(current_model)]

#: Documents both key headers in /openapi.json; reads nothing (see ``auth.py``).
KEY_SCHEMES: list[DependsParam] = [Security(bearer_scheme), Security(api_key_scheme)]
#: Route dependencies: a valid API key / admin key, documented in /openapi.json.
API_KEY: list[DependsParam] = [*KEY_SCHEMES, Depends(require_api_key)]
ADMIN_KEY: list[DependsParam] = [*KEY_SCHEMES, Depends(require_admin_key)]
