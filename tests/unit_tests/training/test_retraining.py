"""retraining: the schedule and event-trigger settings read at deploy time."""

from __future__ import annotations

import pytest
from metaflow import FlowSpec, step
from metaflow.flowspec import FlowStateItems

from src.training.errors import ConfigError
from src.training.retraining import (
    SCHEDULE_ENV,
    SCHEDULE_TIMEZONE_ENV,
    TRIGGER_EVENT_ENV,
    schedule_options,
    trigger_options,
    with_retraining,
)


def flow_decorators(flow_cls: type) -> dict[str, list]:
    return flow_cls._flow_state[FlowStateItems.FLOW_DECORATORS]


def make_flow() -> type:
    class TinyFlow(FlowSpec):
        @step
        def start(self) -> None:
            self.next(self.end)

        @step
        def end(self) -> None:
            pass

    return TinyFlow


@pytest.mark.parametrize("name", ["hourly", "daily", "weekly", "Weekly"])
def test_named_schedules_set_only_their_flag(name):
    options = schedule_options({SCHEDULE_ENV: name})
    flags = {key: options[key] for key in ("hourly", "daily", "weekly")}
    assert flags == {key: key == name.lower() for key in flags}
    assert options["cron"] is None


def test_cron_schedule_and_timezone():
    options = schedule_options(
        {SCHEDULE_ENV: " 0 3  * * 1 ", SCHEDULE_TIMEZONE_ENV: "Europe/Paris"}
    )
    assert options["cron"] == "0 3 * * 1"
    assert options["timezone"] == "Europe/Paris"
    assert not any(options[key] for key in ("hourly", "daily", "weekly"))


@pytest.mark.parametrize("value", ["fortnightly", "0 3 * *", "0 3 * * 1 2026", "0 3 * * $(x)"])
def test_bad_schedule_is_a_config_error_naming_the_setting(value):
    with pytest.raises(ConfigError, match=SCHEDULE_ENV):
        schedule_options({SCHEDULE_ENV: value})


def test_unset_means_no_schedule_and_no_trigger():
    assert schedule_options({}) is None
    assert schedule_options({SCHEDULE_ENV: "  "}) is None
    assert trigger_options({}) is None


def test_trigger_event_name_rules():
    assert trigger_options({TRIGGER_EVENT_ENV: "model_drift.iris_classifier"}) == {
        "event": "model_drift.iris_classifier"
    }
    with pytest.raises(ConfigError, match=TRIGGER_EVENT_ENV):
        trigger_options({TRIGGER_EVENT_ENV: "model drift"})


def test_decorators_applied_only_when_set():
    plain = with_retraining(make_flow(), {})
    assert not flow_decorators(plain).get("schedule")
    assert not flow_decorators(plain).get("trigger")

    both = with_retraining(
        make_flow(), {SCHEDULE_ENV: "weekly", TRIGGER_EVENT_ENV: "model_drift.iris_classifier"}
    )
    (schedule,) = flow_decorators(both)["schedule"]
    (trigger,) = flow_decorators(both)["trigger"]
    assert schedule.attributes["weekly"] is True
    assert schedule.attributes["daily"] is False
    assert trigger.attributes["event"] == "model_drift.iris_classifier"
