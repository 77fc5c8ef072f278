"""monitoring/prometheus/alerts.yml: structure, metric names, promtool check + unit tests."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from src.serve.metrics import Metrics
from src.serve.monitoring.prometheus import METRIC_NAMES
from src.serve.predlog.prometheus import METRIC_NAMES as LIVE_QUALITY_NAMES
from src.serve.predlog.quality import STATUS_CODES
from tests.system_tools import system_tool

ROOT = Path(__file__).resolve().parents[4]
ALERTS = ROOT / "monitoring" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "monitoring" / "prometheus" / "alerts_test.yml"
SEVERITIES = {"critical", "warning", "info"}
REQUIRED = {
    "ModelFeatureDrift",  # high drift, per feature
    "ServeHighErrorRate",  # 5xx ratio
    "ServeHighLatencyP99",
    "ServeNoModelLoaded",
}
DURATION = re.compile(r"^\d+[smhd]$")


def rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def exported_names() -> set[str]:
    """Series names the service exports (its own metrics and the monitor's), plus `up`."""
    names = set(METRIC_NAMES) | set(LIVE_QUALITY_NAMES) | {"up"}
    for family in Metrics("0.0.0").registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
    return names


def promtool() -> str:
    return system_tool("promtool", package="prometheus")


def test_every_rule_is_complete() -> None:
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert set(names) >= REQUIRED
    for rule in rules():
        assert isinstance(rule["expr"], str), rule["alert"]
        assert rule["expr"].strip(), rule["alert"]
        assert DURATION.match(str(rule["for"])), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]
        assert "docs/monitoring.md" in rule["annotations"]["description"], rule["alert"]


def test_rules_only_use_metrics_the_service_exports() -> None:
    exported = exported_names()
    for rule in rules():
        # drop label lists (`by (...)`, `on (...)`) and matchers (`{...}`), keep series names
        expr = re.sub(r"\b(by|on|without|ignoring)\s*\([^)]*\)|\{[^}]*\}", " ", rule["expr"])
        used = set(re.findall(r"\b((?:model|serve)_[a-z0-9_]+|up)\b", expr))
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)


def test_drift_alerts_use_labels_from_metadata_only() -> None:
    for rule in rules():
        for by in re.findall(r"by \(([^)]*)\)", rule["expr"]):
            assert {label.strip() for label in by.split(",")} <= {
                "model_name", "feature", "le", "route", "model", "version", "metric",
            }, rule["alert"]  # fmt: skip


def run_promtool(*args: str) -> str:
    """promtool's output for ``args``, which must succeed."""
    completed = subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout + completed.stderr


def test_promtool_check_rules() -> None:
    output = run_promtool("check", "rules", str(ALERTS))
    assert f"SUCCESS: {len(rules())} rules found" in output


def test_promtool_unit_tests_fire_each_alert_on_its_signal_only() -> None:
    assert "SUCCESS" in run_promtool("test", "rules", str(ALERTS_TEST))
    tested = set(re.findall(r"alertname: (\w+)", ALERTS_TEST.read_text()))
    assert tested == {rule["alert"] for rule in rules()}


def test_dashboard_has_drift_and_data_quality_panels() -> None:
    dashboard = json.loads((ROOT / "monitoring/grafana/dashboards/ml-api.json").read_text())
    exprs = {
        panel["title"]: " ".join(t["expr"] for t in panel.get("targets", []))
        for panel in dashboard["panels"]
    }
    joined = " ".join(exprs.values())
    for name in (
        "model_feature_drift_psi",
        "model_feature_drift_status",
        "model_prediction_drift_psi",
        "model_input_out_of_range_total",
        "model_input_missing_total",
        "model_input_unknown_category_total",
    ):
        assert name in joined, name
    used = set(re.findall(r"\bmodel_[a-z0-9_]+", re.sub(r"by \([^)]*\)|on \([^)]*\)", "", joined)))
    assert used <= set(METRIC_NAMES) | set(LIVE_QUALITY_NAMES)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_dashboard_shows_live_quality_next_to_training() -> None:
    dashboard = json.loads((ROOT / "monitoring/grafana/dashboards/ml-api.json").read_text())
    panel = next(p for p in dashboard["panels"] if p["title"] == "Live quality vs training")
    exprs = " ".join(t["expr"] for t in panel["targets"])
    assert "model_live_metric" in exprs
    assert "model_training_metric" in exprs
    assert any("model_live_labelled_total" in t["expr"] for p in dashboard["panels"]
               for t in p.get("targets", []))  # fmt: skip


def test_live_quality_alert_reads_the_service_verdict() -> None:
    rule = next(r for r in rules() if r["alert"] == "ModelLiveQualityDegraded")
    assert "model_live_quality_status" in rule["expr"]
    assert f"== {STATUS_CODES['degraded']}" in rule["expr"]
