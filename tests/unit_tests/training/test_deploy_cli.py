"""python -m src.training.deploy: one line per variant, exit 1 when any check fails.

The compile-and-check itself runs in tests/integration_tests/test_argo_compile.py; here the
variants are replaced by canned reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from src.training.deploy import __main__ as cli
from src.training.deploy import argo_check
from src.training.deploy.argo_check import VariantReport
from src.training.deploy.compile import ClusterSettings


@pytest.fixture
def reports(monkeypatch):
    canned: list[VariantReport] = []
    seen = {}

    def fake_check_variants(
        flow_script, flow_cls, config_path, variants, out_dir, *, cwd, settings
    ):
        seen.update(script=flow_script, variants=variants, settings=settings)
        return canned

    monkeypatch.setattr(argo_check, "check_variants", fake_check_variants)
    return canned, seen


def test_all_variants_ok_exits_zero(reports, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("METAFLOW_KUBERNETES_NAMESPACE", "team-ml")
    monkeypatch.delenv("METAFLOW_KUBERNETES_CONTAINER_IMAGE", raising=False)
    canned, seen = reports
    canned.append(VariantReport("default", [], {"workflow-template": Path("t.json")}))
    assert cli.main(["--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "default: ok (t.json)\n"
    assert seen["script"] == "run_training_workflow.py"
    assert [v.name for v in seen["variants"]] == ["default", "scheduled", "triggered"]
    assert seen["variants"][2].trigger_event == "model_drift.iris_classifier"
    # settings from the environment win; the rest keep their defaults
    assert seen["settings"].namespace == "team-ml"
    assert seen["settings"].image == ClusterSettings().image


def test_a_problem_exits_one_and_is_printed(reports, capsys, tmp_path):
    canned, _ = reports
    canned.append(VariantReport("default", [], {}))
    canned.append(VariantReport("triggered", ["no Sensor for event 'x'"], {}))
    assert cli.main(["--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["triggered: 1 problem(s) ()", "  - no Sensor for event 'x'"]
