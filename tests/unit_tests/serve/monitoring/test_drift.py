"""PSI math, binning and statuses (src/serve/monitoring/drift.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from src.serve.monitoring.drift import (
    CategoricalReference,
    MonitoringError,
    MonitorSpec,
    NumericReference,
    Thresholds,
    compare,
    psi,
    worst_status,
)
from tests.artifact_factory import numeric_reference


def test_psi_of_identical_distributions_is_zero() -> None:
    assert psi([0.1] * 10, [0.1] * 10) == pytest.approx(0.0)
    assert psi([0.2, 0.3, 0.5], [20, 30, 50]) == pytest.approx(0.0)  # counts are normalised


def test_psi_on_a_known_pair() -> None:
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert expected == pytest.approx(0.274653, abs=1e-6)
    # symmetric in its arguments
    assert psi([0.25, 0.75], [0.5, 0.5]) == pytest.approx(expected)


def test_psi_smooths_empty_bins_with_epsilon() -> None:
    eps = 1e-4
    expected = (eps - 0.5) * math.log(eps / 0.5) + (1 - 0.5) * math.log(1 / 0.5)
    assert psi([0.5, 0.5], [0, 10], epsilon=eps) == pytest.approx(expected, rel=1e-3)
    assert math.isfinite(psi([0.0, 1.0], [1.0, 0.0]))


def test_psi_rejects_mismatched_or_negative_input_and_is_nan_on_empty_current() -> None:
    with pytest.raises(MonitoringError, match="equally long"):
        psi([0.5, 0.5], [1.0])
    with pytest.raises(MonitoringError, match="non-negative"):
        psi([0.5, 0.5], [-1.0, 2.0])
    assert math.isnan(psi([0.5, 0.5], [0, 0]))


def test_psi_of_a_shifted_normal_is_large_and_of_a_resample_is_small() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(0, 1, 5000)
    ref = NumericReference.from_stats("x", numeric_reference(train))
    same = ref.bin_counts(rng.normal(0, 1, 2000))
    shifted = ref.bin_counts(rng.normal(1, 1, 2000))
    assert psi(ref.fractions, same) < 0.02
    assert psi(ref.fractions, shifted) > 0.5


def test_numeric_binning_matches_the_training_histogram() -> None:
    """Below the first edge -> first bin, above the last -> last bin, as training counted."""
    rng = np.random.default_rng(1)
    train = np.round(rng.gamma(2.0, 1.0, 400), 1)  # ties on edges, like real data
    stats = numeric_reference(train)
    ref = NumericReference.from_stats("x", stats)
    assert ref.bin_counts(train) / train.size == pytest.approx(stats["bin_fractions"])
    probe = np.asarray([-100.0, stats["bin_edges"][0], stats["bin_edges"][-1], 1e9])
    counts = ref.bin_counts(probe)
    assert counts[0] == 2
    assert counts[-1] == 2
    assert counts.sum() == 4


def test_categorical_codes_and_unknown_bin() -> None:
    ref = CategoricalReference.from_stats(
        "c", {"kind": "categorical", "frequencies": {"a": 0.75, "b": 0.25}}, ["a", "b"]
    )
    codes = np.asarray([ref.code(v) for v in ["a", "b", "zzz", None, "a"]])
    assert codes.tolist() == [0.0, 1.0, -1.0, -2.0, 0.0]
    assert ref.bin_counts(codes[codes != -2]).tolist() == [2, 1, 1]
    assert ref.bin_labels() == ["a", "b", "__unknown__"]
    assert ref.decode(-1.0) == "__unknown__"
    assert ref.decode(-2.0) is None


def test_statuses_and_thresholds() -> None:
    t = Thresholds(warn=0.1, drift=0.25, min_samples=10)
    assert t.status(0.05, 100) == "ok"
    assert t.status(0.1, 100) == "warn"
    assert t.status(0.2, 100) == "warn"
    assert t.status(0.25, 100) == "drift"
    assert t.status(3.0, 9) == "insufficient_data"
    assert worst_status(["ok", "drift", "warn"]) == "drift"
    assert worst_status(["insufficient_data", "ok"]) == "ok"
    with pytest.raises(MonitoringError, match="warn < drift"):
        Thresholds(warn=0.3, drift=0.2, min_samples=200)
    with pytest.raises(MonitoringError, match="min_samples"):
        Thresholds(warn=0.1, drift=0.25, min_samples=0)


def test_compare_ignores_missing_values() -> None:
    ref = NumericReference.from_stats("x", numeric_reference(np.arange(100.0)))
    values = np.concatenate([np.arange(100.0), np.full(50, np.nan)])
    result = compare(ref, values, Thresholds(warn=0.1, drift=0.25, min_samples=10))
    assert result.count == 100
    assert result.psi == pytest.approx(0.0, abs=1e-9)
    assert result.status == "ok"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: m.pop("features"), "lacks 'features'"),
        (lambda m: m["reference"]["sepal_length"].update(bin_edges=[1.0, 2.0]), "bin_edges"),
        (lambda m: m["reference"]["sepal_length"].update(bin_edges=[3.0] + [1.0] * 10),
         "non-decreasing"),
        (lambda m: m["reference"]["sepal_length"].update(bin_fractions=["x"] * 10), "number"),
        (lambda m: m["features"][0].update(type="complex"), "unknown type"),
    ],
)  # fmt: skip
def test_unusable_metadata_is_refused_with_a_clear_message(iris_metadata, mutate, message) -> None:
    mutate(iris_metadata)
    with pytest.raises(MonitoringError, match=message):
        MonitorSpec.from_metadata(iris_metadata)


def test_feature_without_reference_is_reported_not_judged(iris_metadata) -> None:
    del iris_metadata["reference"]["petal_width"]
    spec = MonitorSpec.from_metadata(iris_metadata)
    assert spec.features[3].reference is None
    result = compare(None, np.ones(500), Thresholds(warn=0.1, drift=0.25, min_samples=200))
    assert result.psi is None
    assert result.status == "no_reference"
