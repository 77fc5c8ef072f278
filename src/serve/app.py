"""The FastAPI application factory and the ``python -m src.serve.app`` entry point.

``create_app(settings)`` wires settings, metrics, hooks, the model store, auth (with the per-key
rate limit), the data plane and its two adapters (the lean ASGI path and the FastAPI routes),
the other routes, error handlers, OpenAPI and the middleware stack (outermost first: security
headers, the request context, the time limit).
Its lifespan loads the model (a missing or broken model
is not fatal: ``/health`` answers 503 with the reason) and runs the poller that picks up new
versions. ``main()`` validates the settings (one message, exit code 2 on error) and runs
uvicorn; on SIGTERM uvicorn stops accepting connections, lets in-flight requests finish (up to
``SHUTDOWN_GRACE_SECONDS``) and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRoute
from loguru import logger
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route

from src.serve.access_log import ACCESS_LOG
from src.serve.auth import Authenticator
from src.serve.batching import BatchMetrics, MicroBatcher
from src.serve.dataplane import DataPlane
from src.serve.docs_pages import install_docs_pages
from src.serve.errors import install_error_handlers
from src.serve.fleet import ModelFleet
from src.serve.hooks import HookRegistry, OnlyModel
from src.serve.http_protocol import COALESCING_PROTOCOL
from src.serve.inference import InferenceService
from src.serve.lean_predict import LeanPredict
from src.serve.logging_setup import configure_logging
from src.serve.metrics import MULTIPROC_ENV, Metrics, PredictionMetricsHook
from src.serve.middleware.request_context import RequestContextMiddleware
from src.serve.middleware.time_limit import lifespan_state
from src.serve.monitoring.config import MonitoringConfig
from src.serve.monitoring.service import MonitoringService
from src.serve.oip.lean import LeanInfer
from src.serve.openapi import install_openapi
from src.serve.predlog.service import PredictionLog, PredictionLogConfig
from src.serve.ratelimit import RateLimiter
from src.serve.reload_signal import prepare_generation_file
from src.serve.routes import build_api_router
from src.serve.serve_app import ServeApp
from src.serve.settings import Settings, SettingsError, load_settings
from src.serve.state import ServeState
from src.serve.version import API_VERSION

APP_IMPORT_STRING = "src.serve.app:create_app"
WORKER_HEALTHCHECK_SECONDS = 30
# CORS (CORS_ALLOW_ORIGINS): what a browser app may send and read; keys travel in headers, so
# no credentials (cookies) mode.
CORS_METHODS = ["GET", "POST"]
CORS_REQUEST_HEADERS = ["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"]
CORS_EXPOSED_HEADERS = ["X-Request-ID", "X-Model-Version", "X-API-Version", "Retry-After"]
UVICORN_LOG_LEVELS = {
    "TRACE": "trace",
    "DEBUG": "debug",
    "INFO": "info",
    "SUCCESS": "info",
    "WARNING": "warning",
    "ERROR": "error",
    "CRITICAL": "critical",
}
DESCRIPTION = (
    "Serves the latest published model artifact. Prediction endpoints need an API key "
    "(`Authorization: Bearer <key>` or `X-API-Key: <key>`). The request schemas below are "
    "those of the model loaded when this page was generated."
)


def _configure_logging(settings: Settings) -> None:
    configure_logging(
        settings.log_level,
        settings.log_json,
        access_buffer_bytes=settings.access_log_buffer_bytes,
        access_flush_seconds=settings.access_log_flush_seconds,
    )


def _log_startup(settings: Settings) -> None:
    n_keys, n_admin = len(settings.all_api_keys()), len(settings.admin_api_keys)
    logger.info(
        "serving {}{} from {} (default {}), api version {}, pid {}",
        ", ".join(f"{spec.name} ({spec.follows})" for spec in settings.model_specs()),
        " and every other model found" if settings.serve_all_models else "",
        settings.artifacts_dir,
        settings.model_specs()[0].name,
        API_VERSION,
        os.getpid(),
    )
    if settings.auth_disabled:
        logger.warning(
            "AUTH_DISABLED=true: every endpoint is open to anyone who can reach {}:{}. "
            "Local development only - never expose this server.",
            settings.fastapi_host,
            settings.fastapi_port,
        )
    else:
        logger.info("auth: {} API key(s), {} admin key(s) configured", n_keys, n_admin)
    _log_trust(settings)


def _log_trust(settings: Settings) -> None:
    """Artifact signature policy and abuse limits, loudly when signatures are not enforced."""
    key_ids = [key_id for key_id, _ in settings.signing_keys()]
    if settings.allow_unsigned:
        logger.warning(
            "ALLOW_UNSIGNED=true: unsigned models (and models signed with an unknown key id) "
            "are loaded WITHOUT verification - a model file is code. Local work only."
        )
    elif not key_ids:
        logger.error(
            "no artifact signing keys configured: every model will be refused. Set "
            "ARTIFACT_SIGNING_KEYS (<key_id>:<secret>, comma-separated) or "
            "ARTIFACT_SIGNING_KEYS_FILE (the key training signs with, ARTIFACT_SIGNING_KEY), "
            "run from the directory where training created secrets/artifact_signing_key.txt, "
            "or ALLOW_UNSIGNED=true for local work only"
        )
    local_key = settings.local_signing_key_path()
    if local_key is not None:
        logger.info(
            "artifact signatures: no signing key configured, trusting the local key file {} "
            "(key id {}); set ARTIFACT_SIGNING_LOCAL_FALLBACK=false in production",
            local_key,
            ", ".join(key_ids),
        )
    elif key_ids:
        logger.info("artifact signatures: verified with key id(s) {}", ", ".join(key_ids))
    if settings.rate_limit_per_minute > 0:
        logger.info(
            "rate limit: {:g} requests per minute per API key (burst {})",
            settings.rate_limit_per_minute,
            settings.rate_limit_burst or "= rate",
        )


def _default_inference(
    settings: Settings, metrics: Metrics
) -> Callable[[HookRegistry], InferenceService]:
    """The plain inference service, or the micro-batcher (BATCH_MAX_SIZE > 1)."""
    threads = settings.inference_threads
    if settings.batch_max_size <= 1:
        return lambda hooks: InferenceService(hooks, threads=threads)

    def batcher(hooks: HookRegistry) -> InferenceService:
        return MicroBatcher(
            hooks,
            max_size=settings.batch_max_size,
            max_wait_seconds=settings.batch_max_wait_ms / 1000,
            metrics=BatchMetrics(metrics.registry),
            threads=threads,
        )

    return batcher


def create_app(
    settings: Settings | None = None,
    *,
    inference_factory: Callable[[HookRegistry], InferenceService] | None = None,
) -> FastAPI:
    """Build the service. Without ``settings`` they are loaded from config.yaml + env.

    ``inference_factory`` builds the service routes predict through (see ``inference.py``);
    by default the micro-batcher when ``BATCH_MAX_SIZE`` > 1, else the plain service.
    """
    settings = settings or load_settings()
    _configure_logging(settings)
    metrics = Metrics(API_VERSION)
    hooks = HookRegistry()
    hooks.add(PredictionMetricsHook(metrics))
    monitoring = None
    if settings.monitoring_enabled:  # docs/monitoring.md
        monitoring = MonitoringService(
            MonitoringConfig.from_settings(settings),
            metrics.registry,
            multiprocess=bool(metrics.multiprocess_dir),
        )
        hooks.add(OnlyModel(monitoring, settings.model_specs()[0].name))  # the default one
        metrics.add_before_render(monitoring.refresh_metrics)
    prediction_log = None
    if settings.prediction_log_enabled:  # docs/feedback.md
        log_config = PredictionLogConfig.from_settings(settings)
        prediction_log = PredictionLog(log_config, metrics.registry)
        metrics.add_before_render(prediction_log.refresh_metrics)
    fleet = ModelFleet(settings, metrics, hooks)
    store = fleet.default
    limiter = (
        RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        if settings.rate_limit_per_minute > 0
        else None
    )
    auth = Authenticator(
        settings.all_api_keys(),
        settings.admin_api_keys,
        disabled=settings.auth_disabled,
        metrics=metrics,
        limiter=limiter,
    )
    state = ServeState(
        settings=settings,
        api_version=API_VERSION,
        metrics=metrics,
        hooks=hooks,
        store=store,
        auth=auth,
        inference=(inference_factory or _default_inference(settings, metrics))(hooks),
        fleet=fleet,
        monitoring=monitoring,
        prediction_log=prediction_log,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        _log_startup(settings)
        await fleet.reload_async()
        await state.inference.start()
        if prediction_log is not None:
            prediction_log.start()
        poller = None
        if settings.model_poll_seconds > 0 or fleet.generation is not None:
            poller = asyncio.create_task(fleet.poll_forever(settings.model_poll_seconds))
        try:
            yield lifespan_state()  # copied into each request's scope["state"] by the server
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            await state.inference.stop()
            if prediction_log is not None:
                prediction_log.close()  # after the last request: everything answered is written
            if monitoring is not None:
                monitoring.close()
            metrics.process_exiting()
            logger.info("shutdown complete")  # after the access log's pending lines
            ACCESS_LOG.flush()

    app = ServeApp(  # FastAPI, plus the lean POST /predict(/batch) adapter (serve_app.py)
        title="MLOps toolset model server",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from the package itself, no CDN (docs_pages.py)
        redoc_url=None,
    )
    dataplane = DataPlane(state)
    app.state.serve = state
    app.state.dataplane = dataplane
    app.include_router(build_api_router(settings))
    install_error_handlers(app)
    install_openapi(app, store)
    install_docs_pages(app)
    plain_routes = {
        route.endpoint: route.path
        for route in app.router.routes
        if isinstance(route, Route) and not isinstance(route, APIRoute)
    }
    # mounted apps (the docs assets) are labelled with their mount path
    plain_routes.update({r.app: r.path for r in app.router.routes if isinstance(r, Mount)})
    # add_middleware wraps what is already there: the last one added is the outermost.
    if settings.cors_allow_origins:  # inside the request context: preflights are logged too
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
        )
    # request id, body limit, headers (security ones too), time limit, access log, metrics
    app.add_middleware(RequestContextMiddleware, state=state, endpoint_paths=plain_routes)
    app.lean_predict = LeanPredict(dataplane)  # runs inside the same middleware stack
    app.lean_infer = LeanInfer(dataplane, settings.max_batch_rows)  # OIP inference, likewise
    return app


def _prepare_multiprocess_dir() -> Path | None:
    """Point prometheus_client at a clean directory before workers start.

    Returns the directory when this process created it (so it is removed at exit).
    """
    existing = os.environ.get(MULTIPROC_ENV)
    if existing:
        path = Path(existing)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return None
    path = Path(tempfile.mkdtemp(prefix="serve-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def _finish_on_signals() -> None:
    """After uvicorn's graceful shutdown it re-raises the signal it caught; handle it quietly
    so SIGTERM/SIGINT end the process with status 0 instead of the default signal death."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        logger.info("stopped by {}", signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def main() -> int:
    """Validate settings and run uvicorn; returns the process exit code."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.stderr.write(f"serve: invalid settings: {exc}\n")
        return 2
    _configure_logging(settings)
    _finish_on_signals()
    options: dict[str, Any] = {
        "host": settings.fastapi_host,
        "port": settings.fastapi_port,
        "log_config": None,  # loguru handles uvicorn's loggers
        "access_log": False,  # the middleware logs one line per request
        "server_header": False,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
        "loop": "auto",  # uvloop when installed
        "http": COALESCING_PROTOCOL,  # httptools, one write per response
        "lifespan": "on",
        # uvicorn's own level: without it, loguru's stdlib bridge (root logger at level 0)
        # leaves uvicorn at TRACE, and uvicorn then logs every ASGI message of every request
        # (its MessageLoggerMiddleware; its cost is in docs/performance.md).
        "log_level": UVICORN_LOG_LEVELS.get(settings.log_level, "info"),
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return 0
    created = _prepare_multiprocess_dir()
    # A worker answers uvicorn's health ping only once it has imported the app; on a busy
    # node that takes longer than uvicorn's 5 s default and healthy workers were killed.
    options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_SECONDS
    reload_dir = None
    if settings.reload_generation_file is None:  # every worker reads it (reload_signal.py)
        reload_dir = Path(tempfile.mkdtemp(prefix="serve-reload-"))
        os.environ["RELOAD_GENERATION_FILE"] = str(prepare_generation_file(reload_dir))
    try:
        uvicorn.run(APP_IMPORT_STRING, factory=True, workers=settings.workers, **options)
    finally:
        for directory in (created, reload_dir):
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
