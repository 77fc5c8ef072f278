"""The monitor's settings (src/serve/monitoring/config.py): read from the serving Settings."""

from __future__ import annotations

from pathlib import Path

from src.serve.monitoring.config import MonitoringConfig, default_thresholds
from tests.unit_tests.serve.helpers import make_settings


def test_config_reads_the_monitoring_settings() -> None:
    settings = make_settings(
        Path("artifacts"),
        monitoring_window=50,
        monitoring_psi_warn=0.2,
        monitoring_psi_drift=0.4,
        monitoring_min_samples=10,
        monitoring_cache_seconds=0,
        monitoring_refresh_seconds=3,
    )
    config = MonitoringConfig.from_settings(settings)
    assert config.window == 50
    assert config.thresholds.warn == 0.2
    assert config.thresholds.drift == 0.4
    assert config.thresholds.min_samples == 10
    assert config.cache_seconds == 0
    assert config.refresh_seconds == 3


def test_environment_variables_reach_the_monitor(monkeypatch) -> None:
    monkeypatch.setenv("MONITORING_WINDOW", "77")
    monkeypatch.setenv("MONITORING_PSI_DRIFT", "0.5")
    config = MonitoringConfig.from_settings(make_settings(Path("artifacts")))
    assert config.window == 77
    assert config.thresholds.drift == 0.5


def test_default_thresholds_are_those_of_a_service_with_default_settings() -> None:
    config = MonitoringConfig.from_settings(make_settings(Path("artifacts")))
    assert default_thresholds() == config.thresholds
    assert (config.thresholds.warn, config.thresholds.drift) == (0.1, 0.25)
    assert config.thresholds.min_samples == 200
    assert (config.window, config.cache_seconds, config.refresh_seconds) == (1000, 2.0, 15.0)
