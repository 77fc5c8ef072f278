"""Turn Alertmanager notifications about model drift into Argo Events retraining events.

Alertmanager posts a JSON notification (``version: "4"``) for a group of alerts, again every
``repeat_interval`` while they keep firing. Each drift alert *occurrence* (its fingerprint
and ``startsAt``) yields at most one event, and one notification yields at most one event
per model, however many of its features drift. The event has the shape Metaflow's
``ArgoEvent.publish`` sends, so the Sensor compiled from ``@trigger(event=...)`` accepts it:
``{"name": <event>, "payload": {"name": <event>, "model_name": ..., ...}}``.

Standard library only: the receiver runs beside Alertmanager, not inside a training image.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DRIFT_ALERTS = ("ModelFeatureDrift", "ModelPredictionDrift")
EVENT_PREFIX = "model_drift"
MODEL_LABEL = "model_name"
LEDGER_SIZE = 10_000


class NotificationError(ValueError):
    """The request body is not an Alertmanager webhook notification."""


class EventPublishError(RuntimeError):
    """The Argo Events webhook did not accept an event."""


def event_name(model_name: str, prefix: str = EVENT_PREFIX) -> str:
    """The event that retrains ``model_name`` (what its flow's ``@trigger`` waits for)."""
    return f"{prefix}.{model_name}"


@dataclass(frozen=True)
class DriftAlert:
    """One firing drift alert occurrence from a notification."""

    alertname: str
    model_name: str
    fingerprint: str
    starts_at: str

    @property
    def key(self) -> tuple[str, str]:
        """Identity of this occurrence: the same alert re-notified has the same key."""
        return (self.fingerprint, self.starts_at)


def drift_alerts(notification: Any, alert_names: Iterable[str] = DRIFT_ALERTS) -> list[DriftAlert]:
    """The firing drift alerts of a notification that name a model; validates the shape."""
    if not isinstance(notification, dict) or not isinstance(notification.get("alerts"), list):
        raise NotificationError("expected an Alertmanager notification with an 'alerts' list")
    names = set(alert_names)
    found = []
    for alert in notification["alerts"]:
        if not isinstance(alert, dict) or alert.get("status") != "firing":
            continue
        labels = alert.get("labels") or {}
        model = labels.get(MODEL_LABEL)
        if labels.get("alertname") not in names or not model:
            continue
        fingerprint = alert.get("fingerprint") or json.dumps(labels, sort_keys=True)
        found.append(
            DriftAlert(labels["alertname"], str(model), fingerprint, str(alert.get("startsAt")))
        )
    return found


@dataclass
class AlertLedger:
    """The alert occurrences already turned into events (bounded, oldest forgotten first)."""

    size: int = LEDGER_SIZE
    _seen: OrderedDict[tuple[str, str], None] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def unseen(self, alerts: list[DriftAlert]) -> list[DriftAlert]:
        """The alerts not recorded yet."""
        with self._lock:
            return [alert for alert in alerts if alert.key not in self._seen]

    def record(self, alerts: list[DriftAlert]) -> None:
        """Remember alerts whose event was published."""
        with self._lock:
            for alert in alerts:
                self._seen[alert.key] = None
                self._seen.move_to_end(alert.key)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)


def build_event(model_name: str, alerts: list[DriftAlert], prefix: str) -> dict[str, Any]:
    """The Argo Events body for one model, in Metaflow's ``ArgoEvent`` format."""
    name = event_name(model_name, prefix)
    return {
        "name": name,
        "payload": {
            "name": name,
            "id": str(uuid.uuid4()),
            "timestamp": int(time.time()),
            MODEL_LABEL: model_name,
            "alerts": sorted({alert.alertname for alert in alerts}),
            "fingerprints": sorted({alert.fingerprint for alert in alerts}),
        },
    }


def post_event(url: str, event: dict[str, Any], timeout: float = 10.0) -> None:
    """POST one event to the Argo Events webhook event source."""
    if not url.startswith(("http://", "https://")):
        raise EventPublishError(f"the event webhook URL must be http(s), got {url!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=json.dumps(event).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310  # noqa: S310
            response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise EventPublishError(f"event {event['name']} not accepted by {url}: {exc}") from exc


@dataclass
class DriftEventPublisher:
    """Deduplicate drift alerts and publish one event per model through ``send``."""

    send: Callable[[dict[str, Any]], None]
    prefix: str = EVENT_PREFIX
    alert_names: tuple[str, ...] = DRIFT_ALERTS
    ledger: AlertLedger = field(default_factory=AlertLedger)
    # Held across check-publish-record, so two concurrent deliveries of one notification
    # cannot both publish.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, notification: Any) -> list[dict[str, Any]]:
        """Publish the events a notification calls for; returns them (empty: nothing new).

        An event whose publishing fails is not recorded, so Alertmanager's retry of the
        same notification publishes it then.
        """
        alerts_in = drift_alerts(notification, self.alert_names)
        with self._lock:
            by_model: dict[str, list[DriftAlert]] = {}
            for alert in self.ledger.unseen(alerts_in):
                by_model.setdefault(alert.model_name, []).append(alert)
            published = []
            for model_name, alerts in sorted(by_model.items()):
                event = build_event(model_name, alerts, self.prefix)
                self.send(event)
                self.ledger.record(alerts)
                published.append(event)
            return published
