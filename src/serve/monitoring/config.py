"""The monitor's settings, read from the serving :class:`~src.serve.settings.Settings`.

The ``MONITORING_*`` fields of ``Settings`` are the only place these values and their
defaults are defined; nothing here has a default of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from src.serve.monitoring.drift import Thresholds
from src.serve.settings import Settings


@dataclass(frozen=True)
class MonitoringConfig:
    """What the serving hook needs from the ``MONITORING_*`` settings."""

    window: int
    thresholds: Thresholds
    cache_seconds: float
    refresh_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> MonitoringConfig:
        """The monitoring part of the service settings."""
        return cls(
            window=settings.monitoring_window,
            thresholds=Thresholds(
                warn=settings.monitoring_psi_warn,
                drift=settings.monitoring_psi_drift,
                min_samples=settings.monitoring_min_samples,
            ),
            cache_seconds=settings.monitoring_cache_seconds,
            refresh_seconds=settings.monitoring_refresh_seconds,
        )


def default_thresholds() -> Thresholds:
    """The thresholds a service with default settings uses (the report's option defaults)."""
    fields = Settings.model_fields
    return Thresholds(
        warn=fields["monitoring_psi_warn"].default,
        drift=fields["monitoring_psi_drift"].default,
        min_samples=fields["monitoring_min_samples"].default,
    )
