"""Deploy-time retraining settings: run the flow on a schedule and/or when an event arrives.

Both are read from the environment of ``argo-workflows create`` and become Metaflow's own
flow decorators, ``@schedule`` (an Argo CronWorkflow) and ``@trigger`` (an Argo Events
Sensor):

- ``TRAINING_SCHEDULE``: ``hourly``, ``daily``, ``weekly`` or a 5-field cron expression
  (``"0 3 * * 1"``); ``TRAINING_SCHEDULE_TIMEZONE`` optionally names an IANA time zone.
- ``TRAINING_TRIGGER_EVENT``: the Argo Events event that starts a run, e.g.
  ``model_drift.iris_classifier`` (what ``src.training.drift_receiver`` publishes for a
  drift alert on that model).

Unset (the default) means neither decorator is applied. Local ``run``s ignore both, and the
step pods on the cluster never need them: Metaflow uses them only while compiling the
deployment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from src.training.errors import ConfigError

SCHEDULE_ENV = "TRAINING_SCHEDULE"
SCHEDULE_TIMEZONE_ENV = "TRAINING_SCHEDULE_TIMEZONE"
TRIGGER_EVENT_ENV = "TRAINING_TRIGGER_EVENT"

NAMED_SCHEDULES = ("hourly", "daily", "weekly")
# Metaflow's own rule for @trigger event names (argo_workflows.py refuses anything else).
EVENT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")
CRON_FIELD_PATTERN = re.compile(r"^[0-9A-Za-z*?/,#LW-]+$")
CRON_FIELDS = 5

FlowClass = TypeVar("FlowClass", bound=type)


def schedule_options(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Keyword arguments for Metaflow's ``@schedule``, or None when no schedule is set."""
    value = environ.get(SCHEDULE_ENV, "").strip()
    if not value:
        return None
    timezone = environ.get(SCHEDULE_TIMEZONE_ENV, "").strip() or None
    # Metaflow's default is daily=True: every flag is given explicitly.
    options: dict[str, Any] = {
        "hourly": False,
        "daily": False,
        "weekly": False,
        "cron": None,
        "timezone": timezone,
    }
    if value.lower() in NAMED_SCHEDULES:
        options[value.lower()] = True
        return options
    fields = value.split()
    if len(fields) != CRON_FIELDS or not all(CRON_FIELD_PATTERN.match(f) for f in fields):
        raise ConfigError(
            SCHEDULE_ENV,
            f"{value!r} is neither {', '.join(NAMED_SCHEDULES)} nor a 5-field cron expression "
            "(minute hour day-of-month month day-of-week)",
        )
    options["cron"] = " ".join(fields)
    return options


def trigger_options(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Keyword arguments for Metaflow's ``@trigger``, or None when no event is set."""
    event = environ.get(TRIGGER_EVENT_ENV, "").strip()
    if not event:
        return None
    if not EVENT_NAME_PATTERN.match(event):
        raise ConfigError(
            TRIGGER_EVENT_ENV,
            f"{event!r} is not a valid event name (letters, digits, '_', '.', '-')",
        )
    return {"event": event}


def with_retraining(flow_cls: FlowClass, environ: Mapping[str, str] | None = None) -> FlowClass:
    """Apply ``@schedule`` / ``@trigger`` to a flow class as the environment asks."""
    from metaflow import schedule, trigger

    env = os.environ if environ is None else environ
    scheduled = schedule_options(env)
    if scheduled is not None:
        flow_cls = schedule(**scheduled)(flow_cls)
    triggered = trigger_options(env)
    if triggered is not None:
        flow_cls = trigger(**triggered)(flow_cls)
    return flow_cls
