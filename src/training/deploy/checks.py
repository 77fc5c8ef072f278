"""Check generated Argo objects against the Argo schema and against what the flow declares.

Each ``check_*`` function returns a list of problems (empty = fine), so one run reports
everything that is wrong. Expectations come from the flow class itself (its graph and its
``@resources``) and from the cluster settings the deployment was compiled with.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from src.training.deploy.compile import ArgoObjects, ClusterSettings

CONFIG_PARAMETER = "config"
MEMORY_UNITS = {"": 1e-6, "K": 1e-3, "M": 1.0, "G": 1e3, "Ki": 1.024e-3, "Mi": 1.048576}
QUANTITY = re.compile(r"^([0-9.]+)([A-Za-z]*)$")


@dataclass(frozen=True)
class StepExpectation:
    """One flow step: its name, whether it fans out (foreach), and its ``@resources``."""

    name: str
    foreach_children: tuple[str, ...]
    cpu: float | None
    memory_mb: float | None

    @property
    def template_name(self) -> str:
        """Argo template names use dashes where Metaflow steps use underscores."""
        return self.name.replace("_", "-")


@dataclass(frozen=True)
class FlowExpectation:
    """What the generated objects must show for a flow and a deployment variant."""

    flow_name: str
    steps: tuple[StepExpectation, ...]
    config_text: str
    schedule: str | None = None
    trigger_event: str | None = None


def flow_steps(flow_cls: type) -> tuple[StepExpectation, ...]:
    """The steps of a Metaflow flow class with their fan-outs and declared resources."""
    from metaflow.graph import FlowGraph

    steps = []
    for node in FlowGraph(flow_cls):
        declared = next((d.attributes for d in node.decorators if d.name == "resources"), None)
        steps.append(
            StepExpectation(
                name=node.name,
                foreach_children=tuple(node.out_funcs) if node.type == "foreach" else (),
                cpu=float(declared["cpu"]) if declared else None,
                memory_mb=float(declared["memory"]) if declared else None,
            )
        )
    return tuple(steps)


def _cpu(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _memory_mb(quantity: str) -> float:
    match = QUANTITY.match(quantity)
    if not match or match.group(2) not in MEMORY_UNITS:
        raise ValueError(f"unrecognised memory quantity {quantity!r}")
    return float(match.group(1)) * MEMORY_UNITS[match.group(2)]


def _dropped_fields(original: Any, dumped: Any, path: str = "") -> list[str]:
    """Keys with a value in ``original`` that the schema model did not keep (unknown fields).

    Keys whose value is null are skipped: the Kubernetes client serialises every field it
    knows, including ones newer than the Argo schema, as null.
    """
    if isinstance(original, dict) and isinstance(dumped, dict):
        missing = [
            f"{path}.{key}".lstrip(".")
            for key, value in original.items()
            if key not in dumped and value is not None
        ]
        for key, value in original.items():
            if key in dumped:
                missing += _dropped_fields(value, dumped[key], f"{path}.{key}")
        return missing
    if isinstance(original, list) and isinstance(dumped, list):
        return [
            problem
            for index, (left, right) in enumerate(zip(original, dumped, strict=False))
            for problem in _dropped_fields(left, right, f"{path}[{index}]")
        ]
    return []


# Fields the schema models cannot hold although Argo accepts them: the Sensor's own apiVersion
# and kind (checked below), the container name Metaflow gives the sensor pod, and the
# free-form Workflow a Sensor trigger creates (validated as a Workflow instead).
SENSOR_EXTRAS = re.compile(
    r"^(apiVersion|kind|spec\.template\.container\.name"
    r"|spec\.triggers\[\d+\]\.template\.k8s\.source\.resource\..*)$"
)


def check_schema(kind: str, obj: dict[str, Any]) -> list[str]:
    """Validate an Argo object with hera's generated models; unknown fields are problems too."""
    from hera.events.models import Sensor
    from hera.workflows.models import CronWorkflow, Workflow, WorkflowTemplate
    from pydantic import ValidationError

    models = {
        "WorkflowTemplate": WorkflowTemplate,
        "CronWorkflow": CronWorkflow,
        "Workflow": Workflow,
        "Sensor": Sensor,
    }
    if obj.get("kind") != kind or not str(obj.get("apiVersion", "")).startswith("argoproj.io/"):
        return [f"expected an argoproj.io {kind}, got {obj.get('apiVersion')} {obj.get('kind')}"]
    try:
        model = models[kind].model_validate(obj)
    except ValidationError as exc:
        return [f"{kind} does not match the Argo schema: {exc}"]
    dumped = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    unknown = _dropped_fields(obj, dumped)
    if kind == "Sensor":
        unknown = [name for name in unknown if not SENSOR_EXTRAS.match(name)]
    problems = [f"{kind} has a field unknown to the Argo schema: {name}" for name in unknown]
    if kind == "Sensor":
        for trigger in obj.get("spec", {}).get("triggers", []):
            resource = trigger.get("template", {}).get("k8s", {}).get("source", {})
            problems += check_schema("Workflow", resource.get("resource") or {})
    return problems


def _step_templates(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for item in template["spec"].get("templates", []):
        if "container" in item:
            found.setdefault(item["name"], []).append(item)
    return found


def _dag_tasks(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (item["name"], task)
        for item in template["spec"].get("templates", [])
        for task in (item.get("dag") or {}).get("tasks", [])
    ]


def check_steps(template: dict[str, Any], expected: FlowExpectation) -> list[str]:
    """One container template per step, and each foreach as a parallel fan-out."""
    problems = []
    containers = _step_templates(template)
    for step in expected.steps:
        count = len(containers.get(step.template_name, []))
        if count != 1:
            problems.append(f"step {step.name}: {count} container templates, expected 1")
    tasks = _dag_tasks(template)
    for step in expected.steps:
        for child in step.foreach_children:
            child_template = child.replace("_", "-")
            wrappers = {dag for dag, task in tasks if task.get("template") == child_template}
            fan_out = [
                task
                for _, task in tasks
                if task.get("template") in wrappers
                and "withParam" in task
                and step.template_name in task["withParam"]
            ]
            if not fan_out:
                problems.append(
                    f"step {child}: not a parallel fan-out over {step.name}'s foreach "
                    "(no DAG task with withParam from it)"
                )
    return problems


def _parameter(template: dict[str, Any], name: str) -> dict[str, Any] | None:
    for parameter in template["spec"].get("arguments", {}).get("parameters", []):
        if parameter.get("name") == name:
            return parameter
    return None


def _decode_include_file(value: str) -> dict[str, Any] | None:
    """Metaflow's IncludeFile descriptor: a JSON object, JSON-encoded once more as a string."""
    decoded: Any = value
    for _ in range(2):
        if isinstance(decoded, str):
            try:
                decoded = json.loads(decoded)
            except json.JSONDecodeError:
                return None
    return decoded if isinstance(decoded, dict) and "url" in decoded else None


def check_config_carried(
    template: dict[str, Any], expected: FlowExpectation, read_s3: Callable[[str], bytes]
) -> list[str]:
    """The config's content is stored in the datastore and handed to the run's start step."""
    parameter = _parameter(template, CONFIG_PARAMETER)
    if parameter is None:
        return [f"no workflow parameter {CONFIG_PARAMETER!r}: the config is not carried"]
    descriptor = _decode_include_file(str(parameter.get("value", "")))
    if descriptor is None or not str(descriptor["url"]).startswith("s3://"):
        return [
            f"parameter {CONFIG_PARAMETER!r} is {str(parameter.get('value'))[:80]!r}, not a "
            "file stored in the S3 datastore: the config is not carried with the run"
        ]
    problems = []
    try:
        stored = read_s3(descriptor["url"])
    except Exception as exc:  # any client error means the run could not read it either
        return [f"config {descriptor['url']} cannot be read from the datastore: {exc}"]
    if stored[:2] == b"\x1f\x8b":
        stored = gzip.decompress(stored)
    if stored.decode(descriptor.get("encoding") or "utf-8") != expected.config_text:
        problems.append(f"config stored at {descriptor['url']} differs from the deployed file")
    start = next(iter(_step_templates(template).get("start", [])), None)
    reference = f"workflow.parameters['{CONFIG_PARAMETER}']"
    if start is None or reference not in json.dumps(start["container"]):
        problems.append(f"the start step does not receive {reference}")
    return problems


def check_cluster_settings(
    template: dict[str, Any], expected: FlowExpectation, settings: ClusterSettings
) -> list[str]:
    """Namespace, image, service account and per-step resource requests."""
    problems = []
    namespace = template["metadata"].get("namespace")
    if namespace != settings.namespace:
        problems.append(f"namespace {namespace!r}, settings say {settings.namespace!r}")
    containers = _step_templates(template)
    for step in expected.steps:
        for item in containers.get(step.template_name, []):
            container = item["container"]
            if container.get("image") != settings.image:
                problems.append(
                    f"step {step.name}: image {container.get('image')!r}, settings say "
                    f"{settings.image!r}"
                )
            if item.get("serviceAccountName") != settings.service_account:
                problems.append(
                    f"step {step.name}: service account {item.get('serviceAccountName')!r}, "
                    f"settings say {settings.service_account!r}"
                )
            problems += _resource_problems(step, container.get("resources") or {})
    return problems


def _resource_problems(step: StepExpectation, resources: dict[str, Any]) -> list[str]:
    if step.cpu is None or step.memory_mb is None:
        return [f"step {step.name}: the flow declares no @resources(cpu=..., memory=...)"]
    requested = resources.get("requests") or {}
    problems = []
    cpu, memory = requested.get("cpu"), requested.get("memory")
    if cpu is None or abs(_cpu(str(cpu)) - step.cpu) > 1e-9:
        problems.append(f"step {step.name}: requests cpu {cpu}, the flow declares {step.cpu:g}")
    if memory is None or abs(_memory_mb(str(memory)) - step.memory_mb) > 1e-6:
        problems.append(
            f"step {step.name}: requests memory {memory}, the flow declares {step.memory_mb:g} MB"
        )
    return problems


def check_retraining(objects: ArgoObjects, expected: FlowExpectation) -> list[str]:
    """The schedule and the event trigger are present exactly when the variant asks."""
    problems = []
    cron = objects.cron_workflow
    if expected.schedule is None and cron is not None:
        problems.append("a CronWorkflow was generated for an unscheduled deployment")
    if expected.schedule is not None:
        schedule = (cron or {}).get("spec", {})
        schedules = schedule.get("schedules") or [schedule.get("schedule")]
        if schedules != [expected.schedule]:
            problems.append(f"schedule {schedules}, expected [{expected.schedule!r}]")
    sensor = objects.sensor
    if expected.trigger_event is None and sensor:
        problems.append("a Sensor was generated for a deployment without a trigger")
    if expected.trigger_event is not None:
        if not sensor:
            return [*problems, f"no Sensor for event {expected.trigger_event!r}"]
        filters = json.dumps([d.get("filters") for d in sensor["spec"].get("dependencies", [])])
        if f"name == '{expected.trigger_event}'" not in filters:
            problems.append(f"the Sensor does not wait for event {expected.trigger_event!r}")
        template_name = objects.workflow_template["metadata"]["name"]
        if f'"name": "{template_name}"' not in json.dumps(sensor["spec"].get("triggers", [])):
            problems.append(f"the Sensor does not submit WorkflowTemplate {template_name!r}")
    return problems


def check_all(
    objects: ArgoObjects,
    expected: FlowExpectation,
    settings: ClusterSettings,
    read_s3: Callable[[str], bytes],
) -> list[str]:
    """Every check on one deployment's objects."""
    template = objects.workflow_template
    problems = check_schema("WorkflowTemplate", template)
    if objects.cron_workflow is not None:
        problems += check_schema("CronWorkflow", objects.cron_workflow)
    if objects.sensor:
        problems += check_schema("Sensor", objects.sensor)
    problems += check_steps(template, expected)
    problems += check_config_carried(template, expected, read_s3)
    problems += check_cluster_settings(template, expected, settings)
    problems += check_retraining(objects, expected)
    return problems
