"""Helpers for monitoring tests: synthetic iris traffic (resampled, jittered, shifted).

Iris is measured to 0.1 cm and its reference decile edges sit on tied values (e.g. many
petal widths are exactly 0.2), so the jitter is Gaussian (sd 0.05 cm) rounded back to the
0.1 cm grid: resampled rows then follow the training distribution, and the PSI of a
1,000-row window stays under ~0.05 (its sampling noise floor is about 9 / 1000).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tests.artifact_factory import IRIS_FEATURES, iris_frame


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


def write_metadata_dir(directory: Path, metadata: dict[str, Any]) -> Path:
    """A model directory holding only ``metadata.json`` (all the report reads)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metadata.json").write_text(json.dumps(metadata))
    return directory
