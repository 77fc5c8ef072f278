"""The report's input readers (report/inputs.py): CSV, records JSON, exported windows."""

from __future__ import annotations

import json

import pytest

from src.serve.monitoring.drift import MonitoringError, MonitorSpec
from src.serve.monitoring.report.inputs import read_input
from tests.artifact_factory import IRIS_FEATURES
from tests.unit_tests.serve.monitoring.helpers import iris_traffic, make_monitor
from tests.unit_tests.serve.monitoring.report.helpers import production_csv


@pytest.fixture
def spec(iris_metadata) -> MonitorSpec:
    return MonitorSpec.from_metadata(iris_metadata)


def test_csv_rows_come_in_feature_order_with_predictions(spec, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        "prediction,petal_width,extra,sepal_length,sepal_width,petal_length\n"
        "setosa,0.2,x,5.1,3.5,1.4\n"
        "NA,1.8, ,6.3,,5.6\n"
    )
    data = read_input(path, spec)
    assert data.rows == [[5.1, 3.5, 1.4, 0.2], [6.3, None, 5.6, 1.8]]
    assert data.predictions == ["setosa", None]
    assert data.source == str(path)
    assert data.warnings == []


def test_a_csv_without_prediction_column_has_no_predictions(spec, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(",".join(IRIS_FEATURES) + "\n5.1,3.5,1.4,0.2\n")
    assert read_input(path, spec).predictions is None


def test_records_json_and_non_numeric_values(spec, tmp_path):
    records = [dict(zip(IRIS_FEATURES, [5.0, 3.0, 4.0, 1.0], strict=True)) for _ in range(10)]
    records[0]["sepal_length"] = None
    records[1]["sepal_width"] = "oops"
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"records": records}))
    data = read_input(path, spec)
    assert len(data.rows) == 10
    assert data.rows[0][0] is None
    assert data.rows[1][1] is None
    assert data.warnings == [
        "1 value(s) of 'sepal_width' are not numbers and were counted as missing"
    ]
    path.write_text(json.dumps(records))  # a plain list of records reads the same
    assert read_input(path, spec).rows == data.rows


def test_format_can_be_forced(spec, tmp_path):
    path = tmp_path / "records.txt"
    path.write_text(json.dumps([dict(zip(IRIS_FEATURES, [5.0, 3.0, 4.0, 1.0], strict=True))]))
    assert read_input(path, spec, "json").rows == [[5.0, 3.0, 4.0, 1.0]]
    with pytest.raises(MonitoringError, match="header but no data rows"):
        read_input(path, spec)  # by extension: read as CSV (one line, a "header")


def test_an_exported_window_is_read_and_a_version_mismatch_warned(iris_metadata, spec, tmp_path):
    monitor = make_monitor(iris_metadata, monitoring_window=20)
    rows, labels = iris_traffic(20, seed=22)
    monitor.observe_many(rows.tolist(), labels)
    exported = monitor.export_window()
    path = tmp_path / "window.json"
    path.write_text(json.dumps(exported))
    data = read_input(path, spec)
    assert data.rows == [row[:-1] for row in exported["rows"]]
    assert data.predictions == labels
    assert data.warnings == []
    exported["model_version"] = "older"
    path.write_text(json.dumps(exported))
    assert "exported for model version older" in read_input(path, spec).warnings[0]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "", "empty"),
        ("bad.csv", "sepal_length,sepal_width,petal_length,petal_width\n", "no data rows"),
        ("bad.csv", "sepal_length,sepal_width,petal_width\n1,2,3\n",
         "lacks feature column(s) ['petal_length']"),
        ("bad.json", "{not json", "not valid JSON"),
        ("bad.json", '{"rows": []}', "expected a window export"),
        ("bad.json", "[]", "no data rows"),
        ("bad.json", '{"format": "mlops-monitoring-window", "columns": ["a"], "rows": [[1, 2]]}',
         "every row needs 1 values"),
    ],
)  # fmt: skip
def test_bad_input_fails_clearly(spec, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(MonitoringError) as raised:
        read_input(path, spec)
    assert message in str(raised.value)


def test_unreadable_input_fails_clearly(spec, tmp_path):
    with pytest.raises(MonitoringError, match="cannot read input"):
        read_input(tmp_path / "nope.csv", spec)
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"sepal_length\n\xe9\n")
    with pytest.raises(MonitoringError, match="not UTF-8"):
        read_input(path, spec)


def test_production_csv_helper_round_trips(spec, tmp_path):
    data = read_input(production_csv(tmp_path / "p.csv", n=5), spec)
    assert len(data.rows) == 5
    assert data.predictions is not None
