"""Compile the flow for Argo Workflows in each deployment variant and check the result.

One local S3 server serves every variant; each variant's objects are written to
``<out>/<variant>/`` and checked with ``src.training.deploy.checks``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from src.training.deploy.checks import FlowExpectation, check_all, flow_steps
from src.training.deploy.compile import ClusterSettings, compile_flow, write_objects
from src.training.deploy.local_s3 import local_s3
from src.training.retraining import SCHEDULE_ENV, TRIGGER_EVENT_ENV

# What Metaflow compiles `@schedule(weekly=True)` into (minute hour day month weekday).
WEEKLY_CRON = "0 0 ? * SUN"


@dataclass(frozen=True)
class Variant:
    """One way of deploying the flow: its environment and what it must generate."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    schedule: str | None = None
    trigger_event: str | None = None


@dataclass
class VariantReport:
    """The problems found for one variant and the files written for it."""

    variant: str
    problems: list[str]
    files: dict[str, Path]


def standard_variants(model_name: str) -> tuple[Variant, ...]:
    """Plain, weekly-scheduled and drift-triggered deployments of one model's config."""
    from src.training.drift_events import event_name

    event = event_name(model_name)
    return (
        Variant("default"),
        Variant("scheduled", {SCHEDULE_ENV: "weekly"}, schedule=WEEKLY_CRON),
        Variant("triggered", {TRIGGER_EVENT_ENV: event}, trigger_event=event),
    )


def load_flow_class(flow_script: Path, class_name: str) -> type:
    """Import a flow class from its file without running the flow."""
    spec = importlib.util.spec_from_file_location(f"_argo_check_{flow_script.stem}", flow_script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {flow_script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, class_name)


def check_variants(
    flow_script: str,
    flow_cls: type,
    config_path: Path,
    variants: tuple[Variant, ...],
    out_dir: Path,
    *,
    cwd: Path,
    settings: ClusterSettings | None = None,
    pass_config: bool = True,
) -> list[VariantReport]:
    """Compile and check every variant against one local S3 server (stopped afterwards).

    ``config_path`` is the config the deployment must carry; it is passed as ``--config``
    unless ``pass_config`` is false (a flow script without that option).
    """
    settings = settings or ClusterSettings()
    steps = flow_steps(flow_cls)
    config_text = config_path.read_text(encoding="utf-8")
    reports = []
    with local_s3() as s3:
        for variant in variants:
            objects = compile_flow(
                flow_script,
                str(config_path) if pass_config else None,
                s3,
                settings,
                cwd=cwd,
                extra_env=variant.env,
                with_sensor=variant.trigger_event is not None,
            )
            files = write_objects(objects, out_dir / variant.name)
            expected = FlowExpectation(
                flow_name=flow_cls.__name__,
                steps=steps,
                config_text=config_text,
                schedule=variant.schedule,
                trigger_event=variant.trigger_event,
            )
            problems = check_all(objects, expected, settings, s3.read)
            reports.append(VariantReport(variant.name, problems, files))
    return reports
