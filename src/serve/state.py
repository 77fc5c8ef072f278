"""The per-app objects routes and middleware share (``app.state.serve``)."""

from __future__ import annotations

from dataclasses import dataclass

from src.serve.auth import Authenticator
from src.serve.fleet import ModelFleet
from src.serve.hooks import HookRegistry
from src.serve.inference import InferenceService
from src.serve.metrics import Metrics
from src.serve.model_store import ModelStore
from src.serve.monitoring.service import MonitoringService
from src.serve.predlog.service import PredictionLog
from src.serve.settings import Settings


@dataclass(frozen=True)
class ServeState:
    """Everything a request may need besides the request itself."""

    settings: Settings
    api_version: str
    metrics: Metrics
    hooks: HookRegistry
    store: ModelStore  # the default model's (``fleet.default``)
    auth: Authenticator
    inference: InferenceService
    fleet: ModelFleet
    monitoring: MonitoringService | None = None  # None when MONITORING_ENABLED=false
    prediction_log: PredictionLog | None = None  # None when PREDICTION_LOG_ENABLED=false
