"""The monitoring series (src/serve/monitoring/prometheus.py): names, values, counter deltas."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry

from src.serve.monitoring.drift import STATUS_CODES
from src.serve.monitoring.prometheus import METRIC_NAMES, MonitoringMetrics
from tests.artifact_factory import IRIS_FEATURES
from tests.unit_tests.serve.monitoring.helpers import iris_traffic, make_monitor, samples


def test_every_declared_series_is_exported_under_its_name(iris_metadata) -> None:
    registry = CollectorRegistry()
    metrics = MonitoringMetrics(registry)
    monitor = make_monitor(iris_metadata, monitoring_window=100)
    metrics.publish(monitor, monitor.snapshot())
    exported = {name for name, _ in samples(registry) if not name.endswith("_created")}
    # unknown-category counters appear only for categorical features (iris has none)
    assert exported == set(METRIC_NAMES) - {"model_input_unknown_category_total"}
    assert len(METRIC_NAMES) == 10
    assert "model_monitoring_rows_total" in METRIC_NAMES
    assert "model_feature_drift_psi" in METRIC_NAMES


def test_counters_advance_by_what_the_window_saw_since_the_last_publish(iris_metadata) -> None:
    registry = CollectorRegistry()
    metrics = MonitoringMetrics(registry)
    monitor = make_monitor(iris_metadata, monitoring_window=50)
    rows, labels = iris_traffic(80, seed=51, shift={"sepal_length": 3.0})
    monitor.observe_many(rows[:40].tolist(), labels[:40])
    metrics.publish(monitor, monitor.snapshot(max_age=0))
    metrics.publish(monitor, monitor.snapshot(max_age=0))  # nothing new: no change
    name = monitor.spec.model_name
    rows_key = ("model_monitoring_rows_total", (("model_name", name),))
    out_key = (
        "model_input_out_of_range_total",
        (("feature", "sepal_length"), ("model_name", name)),
    )
    first = samples(registry)
    assert first[rows_key] == 40
    monitor.observe_many(rows[40:].tolist(), labels[40:])
    metrics.publish(monitor, monitor.snapshot(max_age=0))
    second = samples(registry)
    assert second[rows_key] == 80
    assert (
        second[out_key]
        == monitor.snapshot(max_age=0)["features"]["sepal_length"]["data_quality"]["total"][
            "out_of_range"
        ]
    )
    assert second[out_key] > first[out_key]

    fresh = make_monitor(iris_metadata, monitoring_window=50)  # a new model version
    fresh.observe_many(rows[:10].tolist(), labels[:10])
    metrics.publish(fresh, fresh.snapshot(max_age=0))
    assert samples(registry)[rows_key] == 90  # counts on from where it was


def test_gauges_carry_the_snapshot_verdicts(iris_metadata) -> None:
    registry = CollectorRegistry()
    metrics = MonitoringMetrics(registry)
    monitor = make_monitor(iris_metadata, monitoring_window=300)
    rows, labels = iris_traffic(300, seed=52, shift={"petal_width": 3.0})
    monitor.observe_many(rows.tolist(), labels)
    snapshot = monitor.snapshot()
    metrics.publish(monitor, snapshot)
    got = samples(registry)
    name = monitor.spec.model_name
    for feature in IRIS_FEATURES:
        key = (("feature", feature), ("model_name", name))
        entry = snapshot["features"][feature]
        assert got[("model_feature_drift_status", key)] == STATUS_CODES[entry["status"]]
        assert got[("model_feature_drift_psi", key)] == entry["psi"]
    petal = (("feature", "petal_width"), ("model_name", name))
    assert got[("model_feature_drift_status", petal)] == 2
    model = (("model_name", name),)
    assert got[("model_prediction_drift_psi", model)] == snapshot["prediction"]["psi"]
    assert got[("model_monitoring_window_rows", model)] == 300
    assert got[("model_monitoring_window_size", model)] == 300


def test_an_unjudged_score_is_nan_alone_and_absent_with_several_workers(iris_metadata) -> None:
    monitor = make_monitor(iris_metadata, monitoring_window=100)  # no rows: no PSI yet
    snapshot = monitor.snapshot()
    name = monitor.spec.model_name
    psi = ("model_feature_drift_psi", (("feature", IRIS_FEATURES[0]), ("model_name", name)))
    prediction = ("model_prediction_drift_psi", (("model_name", name),))

    single = CollectorRegistry()
    MonitoringMetrics(single).publish(monitor, snapshot)
    assert math.isnan(samples(single)[psi])
    assert math.isnan(samples(single)[prediction])

    # Several workers: livemax keeps a NaN it reads first, so an idle worker writes nothing.
    shared = CollectorRegistry()
    MonitoringMetrics(shared, multiprocess=True).publish(monitor, snapshot)
    assert psi not in samples(shared)
    assert prediction not in samples(shared)
