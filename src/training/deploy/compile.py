"""Generate the Argo objects of a flow with Metaflow's own compiler, offline.

``argo-workflows create --only-json`` prints the WorkflowTemplate; this module runs exactly
that command in a subprocess against a local S3 server (the code package and the
``IncludeFile`` config are uploaded there). Metaflow registers two more objects on a real
``create``: the CronWorkflow of a ``@schedule`` and the Sensor of a ``@trigger``. The Sensor
is taken from the same compiler (``export_sensor``); the CronWorkflow is written from the
template's ``metaflow/cron`` annotation with the body Metaflow's ArgoClient registers.
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.training.deploy.local_s3 import LocalS3

CREATE_TIMEOUT_SECONDS = 300
SENSOR_OUTPUT_ENV = "ARGO_SENSOR_OUTPUT"


class CompileError(Exception):
    """``argo-workflows create --only-json`` failed or printed something that is not JSON."""


# ClusterSettings field -> the Metaflow setting it becomes.
SETTING_VARIABLES = {
    "namespace": "METAFLOW_KUBERNETES_NAMESPACE",
    "image": "METAFLOW_KUBERNETES_CONTAINER_IMAGE",
    "service_account": "METAFLOW_KUBERNETES_SERVICE_ACCOUNT",
    "cpu_floor": "METAFLOW_KUBERNETES_CPU",
    "memory_floor": "METAFLOW_KUBERNETES_MEMORY",
    "events_service_account": "METAFLOW_ARGO_EVENTS_SERVICE_ACCOUNT",
    "event_source": "METAFLOW_ARGO_EVENTS_EVENT_SOURCE",
    "event_bus": "METAFLOW_ARGO_EVENTS_EVENT_BUS",
}


@dataclass(frozen=True)
class ClusterSettings:
    """What a real cluster needs; each becomes the Metaflow setting of the same meaning."""

    namespace: str = "ml-training"
    image: str = "ghcr.io/example/mlops-trainer:0.1.0"
    service_account: str = "metaflow-training"
    # Metaflow asks for the larger of @resources and these @kubernetes defaults (1 CPU,
    # 4096 MB unless set), so they are the floor; below every step's @resources here.
    cpu_floor: str = "0.25"
    memory_floor: str = "256"
    events_service_account: str = "argo-events-sa"
    event_source: str = "metaflow-webhook"
    event_bus: str = "default"
    # Argo Workflows 3.6+ takes `schedules` (a list) in a CronWorkflow; Metaflow opts in.
    use_schedules: bool = True

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ClusterSettings:
        """The defaults above, overridden by any of the METAFLOW_* settings that are set."""
        defaults = cls()
        values = {
            name: environ.get(variable) or getattr(defaults, name)
            for name, variable in SETTING_VARIABLES.items()
        }
        return cls(**values)

    def metaflow_env(self) -> dict[str, str]:
        """The METAFLOW_* settings a deployment of the flow reads."""
        return {
            **{variable: getattr(self, name) for name, variable in SETTING_VARIABLES.items()},
            "METAFLOW_ARGO_EVENTS_EVENT": "metaflow-event",
            "METAFLOW_ARGO_WORKFLOWS_USE_SCHEDULES": str(self.use_schedules).lower(),
        }


@dataclass
class ArgoObjects:
    """The objects one deployment registers (Sensor / CronWorkflow only when declared)."""

    workflow_template: dict[str, Any]
    sensor: dict[str, Any] | None = None
    cron_workflow: dict[str, Any] | None = None
    files: dict[str, Path] = field(default_factory=dict)


def create_command(flow_script: str, config_path: str | None) -> list[str]:
    """The ``argo-workflows create --only-json [--config <path>]`` command line of a flow."""
    argv = [flow_script, "--datastore=s3", "argo-workflows", "create", "--only-json"]
    return [*argv, "--config", config_path] if config_path else argv


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(  # noqa: S603  # nosec B603
        [sys.executable, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=CREATE_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise CompileError(f"{' '.join(argv)} exited {result.returncode}:\n{tail}")
    return result.stdout


def _parse_json(text: str, what: str) -> dict[str, Any]:
    start = text.find("{")
    try:
        return json.loads(text[start:]) if start >= 0 else json.loads(text)
    except json.JSONDecodeError as exc:
        raise CompileError(f"{what} is not JSON: {exc}") from None


def cron_workflow_for(template: dict[str, Any], use_schedules: bool) -> dict[str, Any] | None:
    """The CronWorkflow Metaflow registers for a scheduled template (None when unscheduled).

    Same body as ``ArgoClient.schedule_workflow_template``.
    """
    annotation = template["metadata"].get("annotations", {}).get("metaflow/cron")
    if not annotation:
        return None
    cron = json.loads(annotation)
    name = template["metadata"]["name"]
    schedule_spec: dict[str, Any] = (
        {"schedules": [cron["schedule"]]} if use_schedules else {"schedule": cron["schedule"]}
    )
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": name, "namespace": template["metadata"].get("namespace")},
        "spec": {
            "suspend": False,
            **schedule_spec,
            "timezone": cron.get("tz") or None,
            "failedJobsHistoryLimit": 10000,
            "successfulJobsHistoryLimit": 10000,
            "workflowSpec": {"workflowTemplateRef": {"name": name}},
            "startingDeadlineSeconds": 3540,
        },
    }


def compile_flow(
    flow_script: str,
    config_path: str | None,
    s3: LocalS3,
    settings: ClusterSettings,
    *,
    cwd: Path,
    extra_env: dict[str, str] | None = None,
    with_sensor: bool = False,
) -> ArgoObjects:
    """Run ``create --only-json`` for one flow and variant; the Sensor too when asked.

    ``config_path`` goes to ``--config`` (the training entry point's option); None for a flow
    script without it.
    """
    env = {**os.environ, **s3.metaflow_env(), **settings.metaflow_env(), **(extra_env or {})}
    argv = create_command(flow_script, config_path)
    template = _parse_json(_run(argv, env, cwd), "the WorkflowTemplate")
    cron_workflow = cron_workflow_for(template, settings.use_schedules)
    objects = ArgoObjects(workflow_template=template, cron_workflow=cron_workflow)
    if with_sensor:
        with tempfile.TemporaryDirectory(prefix="argo-sensor-") as tmp:
            output = Path(tmp) / "sensor.json"
            sensor_env = {**env, SENSOR_OUTPUT_ENV: str(output)}
            _run(["-m", "src.training.deploy.export_sensor", *argv], sensor_env, cwd)
            sensor = json.loads(output.read_text(encoding="utf-8"))
        objects.sensor = sensor or None
    return objects


def write_objects(objects: ArgoObjects, directory: Path) -> dict[str, Path]:
    """Write each object as pretty JSON under ``directory``; returns what was written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for kind, obj in (
        ("workflow-template", objects.workflow_template),
        ("sensor", objects.sensor),
        ("cron-workflow", objects.cron_workflow),
    ):
        if obj is not None:
            path = directory / f"{kind}.json"
            path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            written[kind] = path
    objects.files = written
    return written
