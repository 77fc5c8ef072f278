"""Helpers for monitoring tests: synthetic iris traffic, monitors built from service settings.

Iris is measured to 0.1 cm and its reference decile edges sit on tied values (e.g. many
petal widths are exactly 0.2), so the jitter is Gaussian (sd 0.05 cm) rounded back to the
0.1 cm grid: resampled rows then follow the training distribution, and the PSI of a
1,000-row window stays under ~0.05 (its sampling noise floor is about 9 / 1000).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from src.serve.monitoring.config import MonitoringConfig
from src.serve.monitoring.window import ModelMonitor
from tests.artifact_factory import IRIS_FEATURES, iris_frame
from tests.unit_tests.serve.helpers import make_settings


def iris_traffic(
    n: int, *, seed: int = 0, shift: dict[str, float] | None = None
) -> tuple[np.ndarray, list[str]]:
    """``n`` rows (feature order) and their true labels; ``shift`` adds k std to a feature."""
    features, target = iris_frame()
    x = features.to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(x), n)
    rows = np.round(x[index] + rng.normal(0.0, 0.05, (n, x.shape[1])), 1)
    for name, k in (shift or {}).items():
        column = IRIS_FEATURES.index(name)
        rows[:, column] += k * x[:, column].std()
    return rows, target.to_numpy()[index].tolist()


def row_dicts(rows: np.ndarray) -> list[dict[str, float]]:
    """Rows as request records."""
    return [dict(zip(IRIS_FEATURES, map(float, row), strict=True)) for row in rows]


def monitoring_config(**settings: Any) -> MonitoringConfig:
    """The monitoring config of a service with these settings (``monitoring_window=...``)."""
    return MonitoringConfig.from_settings(make_settings(Path("artifacts"), **settings))


def make_monitor(
    metadata: dict[str, Any], clock: Callable[[], float] | None = None, **settings: Any
) -> ModelMonitor:
    """A monitor configured like the service with these settings (snapshot cache off unless
    ``monitoring_cache_seconds`` is given)."""
    config = monitoring_config(**{"monitoring_cache_seconds": 0, **settings})
    options: dict[str, Any] = {"clock": clock} if clock else {}
    return ModelMonitor(
        metadata,
        window=config.window,
        thresholds=config.thresholds,
        cache_seconds=config.cache_seconds,
        **options,
    )


def write_model_dir(root: Path, metadata: dict[str, Any]) -> Path:
    """``root/<model>/<version>/`` holding only ``metadata.json`` (all the report reads)."""
    directory = root / metadata["model_name"] / metadata["model_version"]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metadata.json").write_text(json.dumps(metadata))
    return directory


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample the registry exposes, keyed by name and sorted labels."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
