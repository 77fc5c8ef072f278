"""Production inputs for the report tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tests.artifact_factory import IRIS_FEATURES
from tests.unit_tests.serve.monitoring.helpers import iris_traffic


def production_csv(path: Path, n: int = 300, **traffic: Any) -> Path:
    """``n`` iris rows (``shift=`` as :func:`iris_traffic`) with a ``prediction`` column."""
    rows, labels = iris_traffic(n, seed=21, **traffic)
    frame = pd.DataFrame(rows, columns=IRIS_FEATURES)
    frame["prediction"] = labels
    frame.to_csv(path, index=False)
    return path
