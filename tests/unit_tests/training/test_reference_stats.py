"""Reference statistics follow docs/artifact.md exactly (same as the shared test factory)."""

from __future__ import annotations

import numpy as np
import pytest

from src.training.errors import DataValidationError
from src.training.reference_stats import categorical_reference, numeric_reference
from src.training.trainers.iris import iris_frame
from tests import artifact_factory


def test_numeric_matches_the_contract_factory():
    values = iris_frame()["sepal_length"].to_numpy()
    assert numeric_reference(values) == artifact_factory.numeric_reference(values)


def test_numeric_fields_and_bins():
    rng = np.random.default_rng(0)
    values = np.append(rng.normal(10, 2, 999), np.nan)
    ref = numeric_reference(values)
    assert ref["kind"] == "numeric"
    assert (ref["count"], ref["missing"]) == (1000, 1)
    assert len(ref["bin_edges"]) == 11
    assert len(ref["bin_fractions"]) == 10
    assert ref["bin_edges"][0] == ref["min"]
    assert ref["bin_edges"][-1] == ref["max"]
    assert sum(ref["bin_fractions"]) == pytest.approx(1.0)
    # decile bins hold about a tenth each
    assert all(0.09 <= f <= 0.11 for f in ref["bin_fractions"])
    assert list(ref["quantiles"]) == ["p01", "p05", "p25", "p50", "p75", "p95", "p99"]
    assert ref["quantiles"]["p50"] == pytest.approx(np.nanmedian(values))


def test_constant_and_repeated_values_still_sum_to_one():
    ref = numeric_reference(np.array([3.0] * 20 + [4.0] * 5))
    assert sum(ref["bin_fractions"]) == pytest.approx(1.0)
    assert ref["std"] >= 0.0


def test_all_missing_numeric_is_an_error():
    with pytest.raises(DataValidationError, match="column 'x' has no values"):
        numeric_reference(np.array([np.nan, np.nan]), "x")


def test_categorical_frequencies_and_missing():
    ref = categorical_reference(["a", "b", "a", "", None, "a"])
    assert ref == {
        "kind": "categorical",
        "count": 6,
        "missing": 2,
        "frequencies": {"a": 0.75, "b": 0.25},
    }


def test_categorical_matches_the_factory_without_missing():
    labels = iris_frame()["species"].tolist()
    ours = categorical_reference(labels)
    theirs = artifact_factory.categorical_reference(labels)
    assert ours["frequencies"] == pytest.approx(theirs["frequencies"])
    assert (ours["count"], ours["missing"]) == (theirs["count"], theirs["missing"])
