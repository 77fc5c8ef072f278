"""Holds the model being served and replaces it safely.

Loading is "load new, then swap": a new version is resolved, verified, deserialised, given its
request schemas and backend, and warmed up with one prediction *before* a single reference
assignment makes it current. Requests already running keep the object they started with. A
version that fails is refused (logged, counted, remembered by version + file stamps so the poller
does not retry it in a tight loop) and whatever was serving keeps serving.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import anyio.to_thread
from loguru import logger

from src.serve.artifact import ArtifactRef, resolve, resolve_alias
from src.serve.errors import ArtifactError, ArtifactNotFoundError, ModelLoadError
from src.serve.heap import settle_heap
from src.serve.hooks import HookRegistry
from src.serve.loaded_model import LoadedModel, build_loaded_model
from src.serve.metrics import Metrics
from src.serve.model_specs import ModelSpec
from src.serve.settings import Settings

MAX_REMEMBERED_FAILURES = 64


@dataclass(frozen=True)
class ReloadResult:
    """What a reload attempt did."""

    status: Literal["loaded", "unchanged", "failed", "skipped", "not_found"]
    version: str | None
    previous_version: str | None
    error: ArtifactError | None = None


class ModelStore:
    """One model's current version, its reloads, and the poller that watches for new ones.

    ``spec`` says which model and what it follows (default: ``MODEL_NAME``, pinned by
    ``MODEL_VERSION`` when set, else ``LATEST``); several models are several stores
    (``fleet.py``).
    """

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        hooks: HookRegistry,
        spec: ModelSpec | None = None,
    ) -> None:
        self.settings = settings
        self.spec = spec or ModelSpec(settings.model_name, None, settings.model_version)
        self.metrics = metrics
        self.hooks = hooks
        self._current: LoadedModel | None = None
        self._reason = "the model has not been loaded yet (starting up)"
        self._lock = threading.Lock()
        self._failed: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._missing: str | None = None  # the last "not found" reported while serving
        self._last_error: str | None = None  # why the newest attempt was refused, if it was

    @property
    def current(self) -> LoadedModel | None:
        """The model serving right now (lock-free read of a single reference)."""
        return self._current

    @property
    def not_ready_reason(self) -> str:
        """Why no model is serving (meaningful only while ``current`` is None)."""
        return self._reason

    @property
    def last_error(self) -> str | None:
        """Why the last version tried was refused or not found (None after a good load)."""
        return self._last_error if self._current is not None else self._reason

    def reload(self, *, retry_failed: bool = False) -> ReloadResult:
        """Load the version that should serve if it differs from the current one (blocking).

        ``retry_failed`` retries a version that failed before (admin reload); the poller
        leaves it alone until its files change.
        """
        with self._lock:
            previous = self._current
            prev_version = previous.version if previous else None
            try:
                ref = self._resolve()
            except ArtifactNotFoundError as exc:
                if previous is None and self._reason != exc.message:
                    logger.warning("no model to serve: {}", exc.message)
                    self._reason = exc.message
                elif previous is not None and (retry_failed or self._missing != exc.message):
                    # e.g. LATEST names a version that does not exist, or the directory became
                    # unreadable: the loaded model keeps serving; said (and counted) once.
                    self._missing = exc.message
                    self._last_error = exc.message
                    self.metrics.reload_failed(self.spec.name, exc.code)
                    logger.error(
                        "model reload failed, still serving {}: {}", previous.version, exc.message
                    )
                return ReloadResult("not_found", None, prev_version, exc)
            self._missing = None
            if previous is not None and previous.version == ref.version:
                return ReloadResult("unchanged", ref.version, prev_version)
            stamp = ref.fingerprint()
            if not retry_failed and self._failed.get(ref.version) == stamp:
                return ReloadResult("skipped", ref.version, prev_version)
            try:
                model = build_loaded_model(ref, self.settings)
            except ArtifactError as exc:
                self._record_failure(ref, stamp, exc, previous)
                return ReloadResult("failed", ref.version, prev_version, exc)
            except Exception as exc:
                error = ModelLoadError(f"version {ref.version}: unexpected error while loading")
                logger.opt(exception=exc).error("loading version {} crashed", ref.version)
                self._record_failure(ref, stamp, error, previous)
                return ReloadResult("failed", ref.version, prev_version, error)
            self._current = model  # the swap: one reference assignment
            self._failed.pop(ref.version, None)
            self._last_error = None
            self.hooks.model_loaded(model, previous)
        del previous  # the replaced model is garbage now, unless a request still holds it
        if self.settings.gc_freeze:
            frozen = settle_heap()
            logger.debug("heap settled after loading {}: {} objects frozen", model.version, frozen)
        for warning in model.warnings:
            logger.warning("model {} {}: library drift: {}", model.name, model.version, warning)
        logger.info(
            "model {} version {} loaded in {:.0f} ms (backend {}, previous {})",
            model.name,
            model.version,
            model.load_seconds * 1000,
            model.backend.name,
            prev_version or "none",
        )
        return ReloadResult("loaded", model.version, prev_version)

    def _resolve(self) -> ArtifactRef:
        spec = self.spec
        if spec.alias is not None:
            return resolve_alias(self.settings.artifacts_dir, spec.name, spec.alias)
        return resolve(self.settings.artifacts_dir, spec.name, spec.version)

    def _record_failure(
        self,
        ref: ArtifactRef,
        stamp: tuple[int, ...],
        error: ArtifactError,
        previous: LoadedModel | None,
    ) -> None:
        self._failed[ref.version] = stamp
        self._last_error = error.message
        self._failed.move_to_end(ref.version)
        while len(self._failed) > MAX_REMEMBERED_FAILURES:
            self._failed.popitem(last=False)
        self.metrics.reload_failed(ref.model_name, error.code)
        if previous is None:
            self._reason = f"model refused: {error.message}"
            logger.error("model version {} refused: {}", ref.version, error.message)
        else:
            logger.error(
                "model version {} refused, still serving {}: {}",
                ref.version,
                previous.version,
                error.message,
            )

    async def reload_async(self, *, retry_failed: bool = False) -> ReloadResult:
        """:meth:`reload` in a worker thread (keeps the event loop free)."""
        return await anyio.to_thread.run_sync(lambda: self.reload(retry_failed=retry_failed))

    async def poll_forever(self, interval: float) -> None:
        """Check for a new version every ``interval`` seconds until cancelled."""
        logger.info("watching for new model versions every {:g} s", interval)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload_async()
            except Exception:  # never let the poller die
                logger.exception("model poll failed")
