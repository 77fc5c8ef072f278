"""The online monitor (src/serve/monitoring/window.py): drift, data quality, window mechanics."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest

from src.serve.backends.base import NumericRows
from src.serve.monitoring import ModelMonitor, MonitoringError, Thresholds
from tests.artifact_factory import IRIS_FEATURES
from tests.unit_tests.serve.monitoring.helpers import iris_traffic, make_monitor


def fill(monitor: ModelMonitor, rows: np.ndarray, labels: list[str]) -> None:
    for row, label in zip(rows, labels, strict=True):
        monitor.observe(tuple(row.tolist()), label)


def test_in_distribution_traffic_shows_low_drift_for_every_feature(iris_metadata) -> None:
    monitor = make_monitor(iris_metadata, monitoring_window=1000)
    fill(monitor, *iris_traffic(1000, seed=3))
    snap = monitor.snapshot()
    assert snap["status"] == "ok", snap
    for name in IRIS_FEATURES:
        assert snap["features"][name]["status"] == "ok"
        assert snap["features"][name]["psi"] < 0.1
    assert snap["prediction"]["status"] == "ok"
    assert snap["drifted_features"] == []
    assert snap["warned_features"] == []
    assert snap["window"] == {"size": 1000, "rows": 1000, "rows_seen": 1000, "rows_rejected": 0}


@pytest.mark.parametrize("shifted", IRIS_FEATURES)
def test_a_three_std_shift_flags_that_feature_and_only_that_one(iris_metadata, shifted) -> None:
    monitor = make_monitor(iris_metadata, monitoring_window=1000)
    fill(monitor, *iris_traffic(1000, seed=4, shift={shifted: 3.0}))
    snap = monitor.snapshot()
    assert snap["drifted_features"] == [shifted]
    assert snap["features"][shifted]["psi"] > 1.0
    for name in IRIS_FEATURES:
        if name != shifted:
            assert snap["features"][name]["status"] == "ok", (name, snap["features"][name])
    assert snap["status"] == "drift"
    quality = snap["features"][shifted]["data_quality"]["window"]
    assert quality["out_of_range"] > 300  # most shifted values exceed the training max


def test_the_window_slides_back_to_ok_after_drift(iris_metadata) -> None:
    monitor = make_monitor(iris_metadata, monitoring_window=500)
    fill(monitor, *iris_traffic(500, seed=5, shift={"sepal_width": 3.0}))
    assert monitor.snapshot()["drifted_features"] == ["sepal_width"]
    fill(monitor, *iris_traffic(500, seed=6))
    snap = monitor.snapshot()
    assert snap["drifted_features"] == []
    assert snap["status"] == "ok"
    assert snap["window"]["rows_seen"] == 1000
    assert snap["window"]["rows"] == 500
    # cumulative out-of-range totals still remember the shifted rows
    total = snap["features"]["sepal_width"]["data_quality"]["total"]["out_of_range"]
    assert total > snap["features"]["sepal_width"]["data_quality"]["window"]["out_of_range"]


def test_too_few_rows_is_insufficient_data(iris_metadata) -> None:
    monitor = make_monitor(iris_metadata, monitoring_min_samples=50)
    fill(monitor, *iris_traffic(49, seed=7, shift={"petal_length": 3.0}))
    snap = monitor.snapshot()
    assert {f["status"] for f in snap["features"].values()} == {"insufficient_data"}
    assert snap["status"] == "insufficient_data"
    assert snap["features"]["petal_length"]["psi"] > 1.0  # the score is shown, not judged
    monitor.observe((5.0, 3.0, 9.0, 1.0), "setosa")
    assert monitor.snapshot()["features"]["petal_length"]["status"] == "drift"


def test_empty_monitor_snapshot(iris_metadata) -> None:
    snap = make_monitor(iris_metadata).snapshot(histograms=True)
    assert snap["window"]["rows"] == 0
    assert snap["status"] == "insufficient_data"
    assert snap["features"]["sepal_length"]["psi"] is None


def test_data_quality_counts_window_and_totals_exactly_across_wraps(iris_metadata) -> None:
    ref = iris_metadata["reference"]
    window = 100
    monitor = make_monitor(iris_metadata, monitoring_window=window)
    good = (5.0, 3.0, 4.0, 1.0)
    expected_missing = expected_high = expected_low = 0
    for i in range(1050):  # wraps 10 times; the fold runs inside observe()
        if i % 7 == 0:
            monitor.observe((None, 3.0, 4.0, 1.0), "setosa")
            expected_missing += 1
        elif i % 11 == 0:
            monitor.observe((5.0, ref["sepal_width"]["max"] + 1, 4.0, 1.0), "setosa")
            expected_high += 1
        elif i % 13 == 0:
            monitor.observe((5.0, 3.0, ref["petal_length"]["min"] - 0.5, 1.0), "setosa")
            expected_low += 1
        else:
            monitor.observe(good, "setosa")
    snap = monitor.snapshot()
    features = snap["features"]
    assert features["sepal_length"]["data_quality"]["total"]["missing"] == expected_missing
    assert features["sepal_width"]["data_quality"]["total"]["out_of_range"] == expected_high
    assert features["petal_length"]["data_quality"]["total"]["out_of_range"] == expected_low
    assert features["petal_width"]["data_quality"]["total"] == {"missing": 0, "out_of_range": 0}
    # the window holds the last 100 rows: i in [950, 1050)
    last = range(950, 1050)
    assert features["sepal_length"]["data_quality"]["window"]["missing"] == sum(
        1 for i in last if i % 7 == 0
    )
    assert features["sepal_width"]["data_quality"]["window"]["out_of_range"] == sum(
        1 for i in last if i % 7 and i % 11 == 0
    )
    assert features["sepal_length"]["count"] == window - sum(1 for i in last if i % 7 == 0)


def test_batches_count_like_single_rows(iris_metadata) -> None:
    rows, labels = iris_traffic(2500, seed=8, shift={"petal_width": 2.0})
    one = make_monitor(iris_metadata, monitoring_window=300)
    fill(one, rows, labels)
    many = make_monitor(iris_metadata, monitoring_window=300)
    many.observe_many(rows[:1000].tolist(), labels[:1000])
    fill(many, rows[1000:1100], labels[1000:1100])
    many.observe_many(rows[1100:].tolist(), labels[1100:])  # larger than the window
    # the request parser's rows with their matrix count the same as plain tuples
    parsed = make_monitor(iris_metadata, monitoring_window=300)
    parsed.observe_many(NumericRows(map(tuple, rows[:1100].tolist()), rows[:1100]), labels[:1100])
    parsed.observe_many(NumericRows(map(tuple, rows[1100:].tolist()), rows[1100:]), labels[1100:])
    a, b, c = one.snapshot(), many.snapshot(), parsed.snapshot()
    for name in IRIS_FEATURES:
        assert a["features"][name] == b["features"][name] == c["features"][name]
    assert a["prediction"] == b["prediction"] == c["prediction"]
    assert b["window"]["rows_seen"] == c["window"]["rows_seen"] == 2500


def test_window_wraps_without_growing_memory(iris_metadata) -> None:
    monitor = make_monitor(iris_metadata, monitoring_window=256)
    values, predictions = monitor._values, monitor._predictions
    size = monitor.memory_bytes()
    row = (5.1, 3.5, 1.4, 0.2)
    for _ in range(2000):  # warm up (first fold, caches)
        monitor.observe(row, "setosa")
    monitor.snapshot()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(20_000):
            monitor.observe(row, "setosa")
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 16_384, f"observe() grew memory by {grown} bytes"
    assert monitor._values is values
    assert monitor._predictions is predictions
    assert monitor.memory_bytes() == size
    assert monitor.rows_seen == 22_000
    assert monitor.snapshot()["window"]["rows"] == 256


def test_prediction_distribution_drift(iris_metadata) -> None:
    monitor = make_monitor(iris_metadata, monitoring_window=600)
    rows, _ = iris_traffic(600, seed=9)
    fill(monitor, rows, ["setosa"] * 600)  # the model suddenly answers one class only
    prediction = monitor.snapshot(histograms=True)["prediction"]
    assert prediction["kind"] == "class"
    assert prediction["distribution"] == {"setosa": 1.0, "versicolor": 0.0, "virginica": 0.0}
    assert prediction["reference"]["setosa"] == pytest.approx(1 / 3, abs=1e-4)
    assert prediction["status"] == "drift"
    assert prediction["psi"] > 1.0
    assert prediction["histogram"]["bins"] == ["setosa", "versicolor", "virginica", "__unknown__"]


def test_regression_predictions_are_binned_on_the_target_reference(regression_metadata) -> None:
    monitor = make_monitor(regression_metadata, monitoring_window=500)
    rows, _ = iris_traffic(500, seed=10)
    rng = np.random.default_rng(0)
    fill(monitor, rows, rng.uniform(0, 10, 500).tolist())
    assert monitor.snapshot()["prediction"]["status"] == "ok"
    fill(monitor, rows, rng.uniform(8, 20, 500).tolist())
    prediction = monitor.snapshot()["prediction"]
    assert prediction["kind"] == "value"
    assert prediction["status"] == "drift"
    assert prediction["current"]["min"] >= 8
    assert prediction["reference"]["max"] == 10.0


def test_categorical_feature_drift_unknown_and_missing(mixed_metadata) -> None:
    monitor = make_monitor(mixed_metadata, monitoring_window=1000, monitoring_min_samples=100)
    rows, labels = iris_traffic(1000, seed=11)
    rng = np.random.default_rng(11)
    colors = rng.choice(["red", "green", "blue"], size=1000, p=[0.5, 0.3, 0.2]).tolist()
    for row, color, label in zip(rows.tolist(), colors, labels, strict=True):
        monitor.observe((*row, color), label)
    snap = monitor.snapshot()
    assert snap["features"]["color"]["status"] == "ok"
    assert snap["features"]["color"]["kind"] == "categorical"
    # now: half the traffic is an unseen category, some values missing
    for i, (row, label) in enumerate(zip(rows.tolist(), labels, strict=True)):
        color = None if i % 10 == 0 else ("purple" if i % 2 else "red")
        monitor.observe((*row, color), label)
    snap = monitor.snapshot(histograms=True)
    color = snap["features"]["color"]
    assert color["status"] == "drift"
    assert snap["drifted_features"] == ["color"]
    assert color["data_quality"]["window"] == {"missing": 100, "unknown_category": 500}
    assert color["data_quality"]["total"] == {"missing": 100, "unknown_category": 500}
    assert color["count"] == 900
    assert color["histogram"]["current"][-1] == pytest.approx(500 / 900, abs=1e-5)  # unknown bin
    exported = monitor.export_window()
    assert exported["rows"][1][4] == "__unknown__"
    assert exported["rows"][0][4] is None


def test_observe_never_raises_and_counts_rejected_rows(iris_metadata) -> None:
    monitor = make_monitor(iris_metadata)
    monitor.observe((1.0, 2.0), "setosa")  # wrong length
    monitor.observe(("x", 2.0, 3.0, 4.0), "setosa")  # not a number
    monitor.observe_many([(1.0,), (2.0,)], ["setosa", "setosa"])
    monitor.observe_many([(1.0, 2.0, 3.0), (1.0, 2.0, 3.0, 4.0, 5.0)], ["setosa"] * 2)  # ragged
    monitor.observe((5.0, 3.0, 4.0, 1.0), "no-such-class")  # recorded; unknown class code
    snap = monitor.snapshot()
    assert snap["window"]["rows_rejected"] == 6
    assert snap["window"]["rows"] == 1


def test_rows_without_the_categorical_column_are_rejected(mixed_metadata) -> None:
    mixed = make_monitor(mixed_metadata)
    mixed.observe((1.0, 2.0, 3.0, 4.0), "setosa")
    assert mixed.snapshot()["window"]["rows_rejected"] == 1


def test_snapshot_is_cached_for_a_short_interval(iris_metadata) -> None:
    now = [100.0]
    monitor = make_monitor(iris_metadata, monitoring_cache_seconds=5, clock=lambda: now[0])
    monitor.observe((5.0, 3.0, 4.0, 1.0), "setosa")
    first = monitor.snapshot()
    monitor.observe((5.0, 3.0, 4.0, 1.0), "setosa")
    assert monitor.snapshot()["window"]["rows"] == 1  # cached
    now[0] += 6
    assert monitor.snapshot()["window"]["rows"] == 2
    assert monitor.snapshot(max_age=0)["window"]["rows"] == 2
    assert "histogram" not in first["features"]["sepal_length"]
    assert "histogram" in monitor.snapshot(histograms=True)["features"]["sepal_length"]


def test_concurrent_writers_lose_no_rows(iris_metadata) -> None:
    monitor = make_monitor(iris_metadata, monitoring_window=1000)
    rows, labels = iris_traffic(4000, seed=12)

    def writer(part: int) -> None:
        for row, label in zip(rows[part::4].tolist(), labels[part::4], strict=True):
            monitor.observe(row, label)
            if part == 0:
                monitor.snapshot(max_age=0.001)

    threads = [threading.Thread(target=writer, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = monitor.snapshot(max_age=0)
    assert snap["window"]["rows_seen"] == 4000
    assert snap["window"]["rows_rejected"] == 0
    assert snap["status"] == "ok"


def test_export_window_is_oldest_first_and_decoded(iris_metadata) -> None:
    monitor = make_monitor(iris_metadata, monitoring_window=3)
    for i in range(5):
        monitor.observe((float(i), 3.0, None, 1.0), ["setosa", "virginica"][i % 2])
    exported = monitor.export_window()
    assert exported["format"] == "mlops-monitoring-window"
    assert exported["version"] == 1
    assert exported["columns"] == [*IRIS_FEATURES, "prediction"]
    assert exported["rows"] == [
        [2.0, 3.0, None, 1.0, "setosa"],
        [3.0, 3.0, None, 1.0, "virginica"],
        [4.0, 3.0, None, 1.0, "setosa"],
    ]


def test_invalid_window_size_is_refused(iris_metadata) -> None:
    thresholds = Thresholds(warn=0.1, drift=0.25, min_samples=200)
    with pytest.raises(MonitoringError, match="at least 1 row"):
        ModelMonitor(iris_metadata, window=0, thresholds=thresholds, cache_seconds=0)
