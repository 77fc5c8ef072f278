"""The models one process serves: one :class:`ModelStore` per model, each independent.

Each store loads, verifies, warms up, hot-reloads and fails on its own, so a broken or refused
model never takes a healthy one out of service. The first configured model is the default one
(behind ``/predict``, ``/predict/batch`` and ``/model``). With ``MODEL_NAMES`` holding ``*``,
every model folder that appears under ``ARTIFACTS_DIR`` gets a store (following ``LATEST``) at
the next poll. The poller ticks every ``MODEL_POLL_SECONDS`` and, when a reload generation
file is configured (``reload_signal.py``), also every :data:`~src.serve.reload_signal.
CHECK_SECONDS` to see whether another worker asked for a reload.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import anyio.to_thread
from loguru import logger

from src.serve.hooks import HookRegistry
from src.serve.metrics import Metrics
from src.serve.model_specs import MODEL_NAME_RE, ModelSpec
from src.serve.model_store import ModelStore, ReloadResult
from src.serve.reload_signal import CHECK_SECONDS, ReloadGeneration
from src.serve.settings import Settings

#: Most models ``*`` adds (it bounds memory and the ``model_name`` label values).
MAX_DISCOVERED_MODELS = 64


class ModelFleet:
    """The ordered stores of the served models (see the module docstring)."""

    def __init__(self, settings: Settings, metrics: Metrics, hooks: HookRegistry) -> None:
        self.settings = settings
        self.metrics = metrics
        self.hooks = hooks
        specs = settings.model_specs()
        self.discover_all = settings.serve_all_models
        self._stores: dict[str, ModelStore] = {}
        self._discover_lock = threading.Lock()  # the poller and an admin reload may overlap
        for spec in specs:
            self._add(spec)
        self.default = self._stores[specs[0].name]
        path = settings.reload_generation_file
        self.generation = ReloadGeneration(path) if path is not None else None

    def _add(self, spec: ModelSpec) -> ModelStore:
        store = ModelStore(self.settings, self.metrics, self.hooks, spec=spec)
        self._stores = {**self._stores, spec.name: store}  # copy-on-write: readers never lock
        self.metrics.model_not_ready(spec.name)
        return store

    def store(self, name: str | None) -> ModelStore | None:
        """The store of model ``name`` (the default one for None), or None when not served."""
        return self.default if name is None else self._stores.get(name)

    @property
    def stores(self) -> list[ModelStore]:
        """Every store, the default one first."""
        return list(self._stores.values())

    def discover(self) -> list[str]:
        """With ``*``: add a store for every new model folder; returns the names added."""
        if not self.discover_all:
            return []
        root: Path = self.settings.artifacts_dir
        try:
            names = sorted(p.name for p in root.iterdir() if p.is_dir())
        except OSError:
            return []
        with self._discover_lock:
            return self._add_new(names, root)

    def _add_new(self, names: list[str], root: Path) -> list[str]:
        added = []
        for name in names:
            if name in self._stores or not MODEL_NAME_RE.match(name):
                continue
            if len(self._stores) >= MAX_DISCOVERED_MODELS:
                logger.warning("not serving model {}: {} models already", name, len(self._stores))
                break
            self._add(ModelSpec(name))
            added.append(name)
            logger.info("found model {} under {}: serving it (following LATEST)", name, root)
        return added

    def reload(self, *, retry_failed: bool = False) -> dict[str, ReloadResult]:
        """Reload every model (blocking); one model's failure never stops the others."""
        self.discover()
        results = {}
        for store in self.stores:
            try:
                results[store.spec.name] = store.reload(retry_failed=retry_failed)
            except Exception:  # a store never breaks its neighbours
                logger.exception("reloading model {} crashed", store.spec.name)
        return results

    async def reload_async(self, *, retry_failed: bool = False) -> dict[str, ReloadResult]:
        """:meth:`reload` in a worker thread (keeps the event loop free)."""
        return await anyio.to_thread.run_sync(lambda: self.reload(retry_failed=retry_failed))

    def announce_reload(self) -> None:
        """Tell every other worker to reload now (no-op without a generation file)."""
        if self.generation is None:
            return
        try:
            self.generation.bump()
        except OSError as exc:  # this worker reloaded; the others wait for their next poll
            logger.error(
                "could not tell the other workers to reload ({}): {}",
                self.generation.path,
                exc.strerror or exc,
            )

    async def poll_forever(self, interval: float) -> None:
        """Reload every ``interval`` seconds (0: never) and whenever the reload generation
        changes, until cancelled."""
        tick = CHECK_SECONDS if self.generation is not None else interval
        if interval > 0:
            tick = min(tick, interval)
            logger.info("watching for new model versions every {:g} s", interval)
        next_poll = time.monotonic() + interval
        while True:
            await asyncio.sleep(tick)
            try:
                asked = self.generation is not None and self.generation.changed()
                due = interval > 0 and time.monotonic() >= next_poll
                if asked:
                    logger.info("reload requested through {}", self.settings.reload_generation_file)
                if asked or due:
                    next_poll = time.monotonic() + interval
                    await self.reload_async(retry_failed=asked)
            except Exception:  # never let the poller die
                logger.exception("model poll failed")
