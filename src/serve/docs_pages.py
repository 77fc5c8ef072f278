"""Swagger UI (``/docs``) and ReDoc (``/redoc``) with their assets served by this service.

FastAPI's default pages load their JavaScript and CSS from a public CDN, so they are blank on
an air-gapped network. The assets here come from the installed ``fastapi-offline`` package
(a maintained PyPI package that ships the Swagger UI and ReDoc bundles; nothing is copied into
this repository) and are served under ``ASSETS_URL``; the pages are FastAPI's own HTML
pointed at them. The security-headers middleware gives these pages a ``'self'``-only policy.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

ASSETS_URL = "/docs-assets"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_PACKAGE = "fastapi_offline"


def assets_directory() -> Path:
    """Where the installed package keeps ``swagger-ui-bundle.js``, ``swagger-ui.css``,
    ``redoc.standalone.js`` and ``favicon.png``."""
    return Path(str(files(ASSETS_PACKAGE) / "static"))


def install_docs_pages(app: FastAPI) -> None:
    """Serve the assets and the two pages (build the app with ``docs_url=redoc_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_directory()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
