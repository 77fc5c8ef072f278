"""The serving hook and its Prometheus series (service.py, prometheus.py), without the app."""

from __future__ import annotations

import copy
import math
import time
from types import SimpleNamespace
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry

from src.serve.monitoring.prometheus import METRIC_NAMES
from src.serve.monitoring.service import MonitoringService
from tests.artifact_factory import IRIS_FEATURES
from tests.unit_tests.serve.monitoring.helpers import iris_traffic, monitoring_config, samples


class Pred(NamedTuple):
    prediction: Any
    probabilities: Any = None


def loaded(metadata: dict[str, Any], version: str = "v1") -> SimpleNamespace:
    meta = copy.deepcopy(metadata)
    meta["model_version"] = version
    return SimpleNamespace(raw_metadata=meta, name=meta["model_name"], version=version)


def watching(
    metadata: dict[str, Any], window: int
) -> tuple[CollectorRegistry, MonitoringService, SimpleNamespace]:
    """A service (uncached, a ``window``-row window) watching one freshly loaded model."""
    registry = CollectorRegistry()
    service = MonitoringService(
        monitoring_config(monitoring_window=window, monitoring_cache_seconds=0), registry
    )
    model = loaded(metadata)
    service.on_model_loaded(model, None)
    return registry, service, model


def send(service: MonitoringService, model: Any, rows, labels, batch: bool = False) -> None:
    if batch:
        service.on_predictions(model, rows.tolist(), [Pred(label) for label in labels])
        return
    for row, label in zip(rows.tolist(), labels, strict=True):
        service.on_predictions(model, [tuple(row)], [Pred(label)])


def test_series_after_shifted_traffic(iris_metadata) -> None:
    registry, service, model = watching(iris_metadata, window=1000)
    rows, labels = iris_traffic(600, seed=41, shift={"petal_width": 3.0})
    send(service, model, rows[:300], labels[:300])
    send(service, model, rows[300:], labels[300:], batch=True)
    service.refresh_metrics()
    got = samples(registry)
    name = model.name
    for feature in IRIS_FEATURES:
        key = (("feature", feature), ("model_name", name))
        status = got[("model_feature_drift_status", key)]
        assert status == (2 if feature == "petal_width" else 0)
        psi = got[("model_feature_drift_psi", key)]
        assert psi > 1.0 if feature == "petal_width" else psi < 0.1
        assert ("model_input_missing_total", key) in got
        assert ("model_input_unknown_category_total", key) not in got  # numeric: n/a
    key = (("feature", "petal_width"), ("model_name", name))
    assert got[("model_input_out_of_range_total", key)] > 300
    assert got[("model_monitoring_rows_total", (("model_name", name),))] == 600
    assert got[("model_monitoring_window_rows", (("model_name", name),))] == 600
    assert got[("model_monitoring_window_size", (("model_name", name),))] == 1000
    assert got[("model_prediction_drift_status", (("model_name", name),))] == 0
    exported = {n for n, _ in got}
    assert exported <= set(METRIC_NAMES) | {
        n.removesuffix("_total") + "_created" for n in METRIC_NAMES
    }


def test_counters_only_advance_and_a_swap_starts_a_fresh_window(iris_metadata) -> None:
    registry, service, first = watching(iris_metadata, window=100)
    send(service, first, *iris_traffic(150, seed=42))
    service.refresh_metrics()
    service.refresh_metrics()  # idempotent
    rows_key = ("model_monitoring_rows_total", (("model_name", first.name),))
    assert samples(registry)[rows_key] == 150

    metadata = copy.deepcopy(iris_metadata)
    metadata["features"] = metadata["features"][:3]  # v2 drops petal_width
    second = loaded(metadata, "v2")
    service.on_model_loaded(second, first)
    assert service.monitor.model_version == "v2"
    assert service.monitor.rows_seen == 0
    send(service, first, *iris_traffic(10, seed=43))  # in flight on the old model: skipped
    assert service.monitor.rows_seen == 0
    rows, labels = iris_traffic(20, seed=44)
    send(service, second, rows[:, :3], labels)
    service.refresh_metrics()
    got = samples(registry)
    assert got[rows_key] == 170  # 150 + 20: the counter never goes back
    stale = (("feature", "petal_width"), ("model_name", first.name))
    assert ("model_feature_drift_psi", stale) not in got
    assert (
        "model_feature_drift_status",
        (("feature", "sepal_width"), ("model_name", first.name)),
    ) in got


def test_unusable_metadata_turns_monitoring_off_for_that_model(iris_metadata) -> None:
    service = MonitoringService(monitoring_config(), CollectorRegistry())
    metadata = copy.deepcopy(iris_metadata)
    metadata["reference"]["sepal_length"]["bin_edges"] = [1.0]
    model = loaded(metadata)
    service.on_model_loaded(model, None)
    assert service.monitor is None
    service.on_predictions(model, [(1.0, 2.0, 3.0, 4.0)], [Pred("setosa")])
    service.refresh_metrics()  # nothing to publish, no error


def test_multiprocess_retires_stale_features_without_removing(iris_metadata) -> None:
    registry = CollectorRegistry()
    config = monitoring_config(
        monitoring_window=100, monitoring_cache_seconds=0, monitoring_refresh_seconds=0
    )
    service = MonitoringService(config, registry, multiprocess=True)
    first = loaded(iris_metadata, "v1")
    service.on_model_loaded(first, None)
    service.refresh_metrics()
    metadata = copy.deepcopy(iris_metadata)
    metadata["features"] = metadata["features"][:3]
    service.on_model_loaded(loaded(metadata, "v2"), first)
    service.refresh_metrics()
    got = samples(registry)
    stale = (("feature", "petal_width"), ("model_name", first.name))
    assert got[("model_feature_drift_status", stale)] == -2
    assert math.isnan(got[("model_feature_drift_psi", stale)])
    service.close()


def test_refresher_thread_publishes_in_the_background(iris_metadata) -> None:
    registry = CollectorRegistry()
    config = monitoring_config(
        monitoring_window=100, monitoring_cache_seconds=0, monitoring_refresh_seconds=0.01
    )
    service = MonitoringService(config, registry, multiprocess=True)
    model = loaded(iris_metadata)
    service.on_model_loaded(model, None)
    send(service, model, *iris_traffic(5, seed=45))
    key = ("model_monitoring_rows_total", (("model_name", model.name),))
    deadline = time.monotonic() + 5
    while samples(registry).get(key) != 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    service.close()
    assert samples(registry)[key] == 5


def test_categorical_features_get_unknown_not_out_of_range_counters(mixed_metadata) -> None:
    registry, service, model = watching(mixed_metadata, window=50)
    for color in ("red", "mauve", None, "teal"):
        service.on_predictions(model, [(5.0, 3.0, 4.0, 1.0, color)], [Pred("setosa")])
    service.refresh_metrics()
    got = samples(registry)
    key = (("feature", "color"), ("model_name", model.name))
    assert got[("model_input_unknown_category_total", key)] == 2
    assert got[("model_input_missing_total", key)] == 1
    assert ("model_input_out_of_range_total", key) not in got
