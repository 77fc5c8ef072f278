"""Per-feature reference statistics for drift checks, exactly as docs/artifact.md defines them.

numeric: count, missing, mean, std, min, max, quantiles p01..p99, and 10 bins whose edges are
the training deciles (values outside [e0, e10] count in the first/last bin);
categorical: count, missing and the frequency of each value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from src.training.errors import DataValidationError
from src.training.features import MISSING_CATEGORY, FeatureSpec

QUANTILES = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.5,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
N_BINS = 10


def numeric_reference(values: Iterable[Any], name: str = "value") -> dict[str, Any]:
    """Reference statistics of a numeric column (NaN counts as missing)."""
    array = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    finite = array[~np.isnan(array)]
    if finite.size == 0:
        raise DataValidationError(f"column {name!r} has no values in the training split", name)
    edges = np.quantile(finite, np.linspace(0, 1, N_BINS + 1))
    counts, _ = np.histogram(np.clip(finite, edges[0], edges[-1]), bins=edges)
    quantiles = np.quantile(finite, list(QUANTILES.values()))
    return {
        "kind": "numeric",
        "count": int(array.size),
        "missing": int(array.size - finite.size),
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "quantiles": {key: float(q) for key, q in zip(QUANTILES, quantiles, strict=True)},
        "bin_edges": [float(e) for e in edges],
        "bin_fractions": [float(c) / finite.size for c in counts],
    }


def categorical_reference(values: Iterable[Any]) -> dict[str, Any]:
    """Reference statistics of a categorical column (None/NaN/'' count as missing)."""
    series = pd.Series(list(values), dtype=object)
    missing = series.isna() | (series == MISSING_CATEGORY)
    present = series[~missing].map(str)
    frequencies = present.value_counts(normalize=True, sort=False)
    ordered = sorted(frequencies.items(), key=lambda item: (-item[1], item[0]))
    return {
        "kind": "categorical",
        "count": len(series),
        "missing": int(missing.sum()),
        "frequencies": {str(k): float(v) for k, v in ordered},
    }


def feature_references(X: pd.DataFrame, spec: FeatureSpec) -> dict[str, dict[str, Any]]:  # noqa: N803
    """Reference statistics for every feature, keyed by feature name, in spec order."""
    return {
        f.name: categorical_reference(X[f.name])
        if f.is_categorical
        else numeric_reference(X[f.name].to_numpy(dtype=float), f.name)
        for f in spec.features
    }


def target_reference(y: pd.Series, task: str) -> dict[str, Any]:
    """The training target distribution: categorical over classes, or numeric."""
    if task == "classification":
        return categorical_reference(y)
    return numeric_reference(y.to_numpy(dtype=float), str(y.name))
