"""monitoring/alertmanager/alertmanager.yml: drift alerts are routed to the retraining receiver.

Runs ``amtool check-config`` and ``amtool config routes test`` when amtool is installed
(Debian: prometheus-alertmanager); the structural checks run everywhere.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from src.training.drift_events import DRIFT_ALERTS, MODEL_LABEL
from src.training.drift_receiver import ALERTS_PATH
from tests.system_tools import system_tool

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "monitoring" / "alertmanager" / "alertmanager.yml"
RULES = ROOT / "monitoring" / "prometheus" / "alerts.yml"
RETRAIN = "retrain-on-drift"


def amtool() -> str:
    return system_tool("amtool", package="prometheus-alertmanager")


def routed_to(*labels: str) -> str:
    result = subprocess.run(
        [amtool(), "config", "routes", "test", f"--config.file={CONFIG}", *labels],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout.strip()


def test_drift_alerts_exist_in_the_rules_with_a_model_label():
    rules = yaml.safe_load(RULES.read_text())
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    for name in DRIFT_ALERTS:
        assert MODEL_LABEL in by_name[name]["expr"], name


def test_retrain_receiver_posts_to_the_drift_receiver_and_groups_by_model():
    config = yaml.safe_load(CONFIG.read_text())
    (route,) = [r for r in config["route"]["routes"] if r["receiver"] == RETRAIN]
    assert route["group_by"] == [MODEL_LABEL]
    (receiver,) = [r for r in config["receivers"] if r["name"] == RETRAIN]
    (hook,) = receiver["webhook_configs"]
    assert urlparse(hook["url"]).path == ALERTS_PATH


def test_amtool_accepts_the_config():
    result = subprocess.run(
        [amtool(), "check-config", str(CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("alertname", DRIFT_ALERTS)
def test_drift_alerts_route_to_retraining(alertname):
    assert routed_to(f"alertname={alertname}", "model_name=iris_classifier") == RETRAIN


def test_other_alerts_do_not_retrain():
    assert routed_to("alertname=ServeHighErrorRate") == "default"
