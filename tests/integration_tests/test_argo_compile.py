"""The training flow compiled for Argo Workflows against a local S3 server, and checked.

The same check as ``nox -s argo`` (``src.training.deploy``), on one deployment that is both
scheduled and event-triggered, so every Argo object kind is generated and validated; then
the check is shown to fail for a flow that does not carry its config and for generated
objects that stray from what the flow declares.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from src.training.deploy.argo_check import (
    WEEKLY_CRON,
    Variant,
    check_variants,
    load_flow_class,
)
from src.training.deploy.checks import (
    FlowExpectation,
    check_cluster_settings,
    check_retraining,
    check_schema,
    check_steps,
    flow_steps,
)
from src.training.deploy.compile import ArgoObjects, ClusterSettings
from src.training.drift_events import event_name
from src.training.retraining import SCHEDULE_ENV, TRIGGER_EVENT_ENV

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "src" / "training" / "config.yaml"
EVENT = event_name("iris_classifier")
RETRAINING = Variant(
    "retraining",
    {SCHEDULE_ENV: "weekly", TRIGGER_EVENT_ENV: EVENT},
    schedule=WEEKLY_CRON,
    trigger_event=EVENT,
)

# A flow whose `config` is a plain path parameter: the deployment carries only the path,
# which does not exist in the pods.
UNCARRIED_FLOW = """
from metaflow import FlowSpec, Parameter, resources, step


class UncarriedConfigFlow(FlowSpec):
    config = Parameter("config", default="src/training/config.yaml")

    @resources(cpu=0.5, memory=512)
    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.work, foreach="items")

    @resources(cpu=1, memory=1024)
    @step
    def work(self):
        self.next(self.join)

    @resources(cpu=0.5, memory=512)
    @step
    def join(self, inputs):
        self.next(self.end)

    @resources(cpu=0.5, memory=512)
    @step
    def end(self):
        pass


if __name__ == "__main__":
    UncarriedConfigFlow()
"""


@pytest.fixture(scope="module", autouse=True)
def metaflow_user():
    previous = os.environ.get("METAFLOW_USER")
    os.environ["METAFLOW_USER"] = "tester"
    yield
    if previous is None:
        del os.environ["METAFLOW_USER"]
    else:
        os.environ["METAFLOW_USER"] = previous


@pytest.fixture(scope="module")
def training_flow():
    from src.training.training_workflow import TrainingWorkflow

    return TrainingWorkflow


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, training_flow):
    out = tmp_path_factory.mktemp("argo")
    (report,) = check_variants(
        "run_training_workflow.py", training_flow, CONFIG, (RETRAINING,), out, cwd=REPO
    )
    files = report.files
    objects = ArgoObjects(
        workflow_template=json.loads(files["workflow-template"].read_text()),
        sensor=json.loads(files["sensor"].read_text()),
        cron_workflow=json.loads(files["cron-workflow"].read_text()),
    )
    expected = FlowExpectation(
        flow_name="TrainingWorkflow",
        steps=flow_steps(training_flow),
        config_text=CONFIG.read_text(),
        schedule=WEEKLY_CRON,
        trigger_event=EVENT,
    )
    return report, objects, expected


def test_the_training_flow_passes_every_check(compiled):
    report, objects, _ = compiled
    assert report.problems == []
    assert set(report.files) == {"workflow-template", "sensor", "cron-workflow"}
    assert objects.cron_workflow["spec"]["schedules"] == [WEEKLY_CRON]
    names = {t["name"] for t in objects.workflow_template["spec"]["templates"]}
    assert {"start", "train-candidate", "join", "evaluate", "publish", "end"} <= names
    parameters = objects.workflow_template["spec"]["arguments"]["parameters"]
    # A pod has no lasting disk: deployed runs leave publishing to publish_run.
    # Argo hands the JSON-encoded value to the pods (set_parameters), where click reads a bool.
    value = json.loads({p["name"]: p["value"] for p in parameters}["publish_local"])
    assert str(value).lower() == "false"


def test_every_step_declares_resources(training_flow):
    steps = flow_steps(training_flow)
    assert [s.name for s in steps if s.cpu is None or s.memory_mb is None] == []
    heavy = {s.name: s.memory_mb for s in steps}
    assert heavy["train_candidate"] >= heavy["start"]


def test_a_flow_that_does_not_carry_its_config_fails(tmp_path):
    script = tmp_path / "uncarried_flow.py"
    script.write_text(UNCARRIED_FLOW)
    flow_cls = load_flow_class(script, "UncarriedConfigFlow")
    (report,) = check_variants(
        str(script),
        flow_cls,
        CONFIG,
        (Variant("default"),),
        tmp_path / "out",
        cwd=tmp_path,
        pass_config=False,
    )
    assert any("not carried" in problem for problem in report.problems), report.problems


def mutated(objects: ArgoObjects, change) -> ArgoObjects:
    copied = copy.deepcopy(objects)
    change(copied)
    return copied


def step_template(objects: ArgoObjects, name: str) -> dict:
    return next(t for t in objects.workflow_template["spec"]["templates"] if t["name"] == name)


def test_wrong_image_namespace_or_resources_are_reported(compiled):
    _, objects, expected = compiled
    settings = ClusterSettings()

    def stray(o):
        o.workflow_template["metadata"]["namespace"] = "default"
        step_template(o, "evaluate")["container"]["image"] = "python:3.11"
        step_template(o, "train-candidate")["container"]["resources"]["requests"]["memory"] = (
            "4096M"
        )

    problems = check_cluster_settings(mutated(objects, stray).workflow_template, expected, settings)
    assert any("namespace 'default'" in p for p in problems)
    assert any(p.startswith("step evaluate: image 'python:3.11'") for p in problems)
    assert any(p.startswith("step train_candidate: requests memory 4096M") for p in problems)


def test_a_sequential_candidate_loop_is_not_a_fan_out(compiled):
    _, objects, expected = compiled

    def sequential(o):
        for template in o.workflow_template["spec"]["templates"]:
            for task in (template.get("dag") or {}).get("tasks", []):
                task.pop("withParam", None)

    problems = check_steps(mutated(objects, sequential).workflow_template, expected)
    assert problems == [
        "step train_candidate: not a parallel fan-out over split's foreach "
        "(no DAG task with withParam from it)"
    ]


def test_missing_schedule_or_wrong_event_is_reported(compiled):
    _, objects, expected = compiled

    def unscheduled_other_event(o):
        o.cron_workflow = None
        for dependency in o.sensor["spec"]["dependencies"]:
            dependency["filters"]["exprs"][0]["expr"] = "name == 'other'"

    problems = check_retraining(mutated(objects, unscheduled_other_event), expected)
    assert any(p.startswith("schedule [None]") for p in problems)
    assert any("does not wait for event" in p for p in problems)


def test_schema_rejects_invalid_and_unknown_fields(compiled):
    _, objects, _ = compiled
    template = copy.deepcopy(objects.workflow_template)
    templates = template["spec"]["templates"]
    index = next(i for i, t in enumerate(templates) if t["name"] == "start")
    templates[index]["container"]["resourcez"] = {"cpu": "1"}
    assert check_schema("WorkflowTemplate", template) == [
        "WorkflowTemplate has a field unknown to the Argo schema: "
        f"spec.templates[{index}].container.resourcez"
    ]
    broken = copy.deepcopy(objects.cron_workflow)
    broken["spec"]["schedules"] = "weekly"  # must be a list
    assert check_schema("CronWorkflow", broken)[0].startswith("CronWorkflow does not match")
