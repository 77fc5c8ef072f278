"""drift_events: Alertmanager drift notifications -> one Argo event per model, deduplicated."""

from __future__ import annotations

import copy

import pytest

from src.training.drift_events import (
    DriftEventPublisher,
    EventPublishError,
    NotificationError,
    drift_alerts,
    event_name,
    post_event,
)


def alert(
    model="iris_classifier",
    feature="petal_length",
    *,
    name="ModelFeatureDrift",
    status="firing",
    fingerprint=None,
    starts_at="2026-12-03T06:00:00Z",
):
    return {
        "status": status,
        "labels": {
            "alertname": name,
            "model_name": model,
            "feature": feature,
            "severity": "warning",
        },
        "annotations": {"summary": "drift"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint or f"{name}-{model}-{feature}",
    }


def notification(*alerts):
    """The body Alertmanager's webhook receiver posts (format version 4)."""
    return {
        "version": "4",
        "groupKey": '{}/{alertname=~"ModelFeatureDrift|ModelPredictionDrift"}:{model_name="x"}',
        "status": "firing",
        "receiver": "retrain-on-drift",
        "groupLabels": {"model_name": "iris_classifier"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": list(alerts),
    }


@pytest.fixture
def sent():
    return []


@pytest.fixture
def publisher(sent):
    return DriftEventPublisher(send=sent.append)


def test_a_fired_alert_yields_one_event_with_the_model_name(publisher, sent):
    events = publisher.handle(notification(alert()))
    assert events == sent
    (event,) = sent
    assert event["name"] == "model_drift.iris_classifier" == event_name("iris_classifier")
    assert event["payload"]["name"] == event["name"]
    assert event["payload"]["model_name"] == "iris_classifier"
    assert event["payload"]["alerts"] == ["ModelFeatureDrift"]


def test_repeated_notifications_of_the_same_alert_publish_nothing_more(publisher, sent):
    body = notification(alert())
    publisher.handle(body)
    assert publisher.handle(copy.deepcopy(body)) == []
    assert len(sent) == 1


def test_several_drifting_features_of_one_model_are_one_event(publisher, sent):
    publisher.handle(
        notification(alert(feature="a"), alert(feature="b"), alert(name="ModelPredictionDrift"))
    )
    (event,) = sent
    assert event["payload"]["alerts"] == ["ModelFeatureDrift", "ModelPredictionDrift"]
    assert len(event["payload"]["fingerprints"]) == 3


def test_each_model_gets_its_own_event(publisher, sent):
    publisher.handle(notification(alert(model="b_model"), alert(model="a_model")))
    assert [e["payload"]["model_name"] for e in sent] == ["a_model", "b_model"]


def test_a_new_occurrence_after_resolution_retrains_again(publisher, sent):
    publisher.handle(notification(alert()))
    publisher.handle(notification(alert(starts_at="2026-12-10T06:00:00Z")))
    assert len(sent) == 2


def test_resolved_and_unrelated_alerts_are_ignored(publisher, sent):
    body = notification(
        alert(status="resolved"),
        alert(name="ServeHighErrorRate"),
        {"status": "firing", "labels": {"alertname": "ModelFeatureDrift"}},  # no model label
    )
    assert publisher.handle(body) == []
    assert sent == []


@pytest.mark.parametrize("body", [None, [], {"alerts": "x"}, {"version": "4"}])
def test_a_body_that_is_not_a_notification_is_refused(publisher, body):
    with pytest.raises(NotificationError):
        publisher.handle(body)


def test_a_failed_publish_is_published_on_the_retry():
    attempts = []

    def flaky(event):
        attempts.append(event["name"])
        if len(attempts) == 1:
            raise EventPublishError("webhook down")

    publisher = DriftEventPublisher(send=flaky)
    with pytest.raises(EventPublishError):
        publisher.handle(notification(alert()))
    assert len(publisher.handle(notification(alert()))) == 1
    assert publisher.handle(notification(alert())) == []
    assert attempts == ["model_drift.iris_classifier"] * 2


def test_prefix_and_alert_names_are_settings(sent):
    publisher = DriftEventPublisher(send=sent.append, prefix="retrain", alert_names=("Custom",))
    publisher.handle(notification(alert(name="Custom"), alert()))
    assert [e["name"] for e in sent] == ["retrain.iris_classifier"]


def test_drift_alerts_reads_labels():
    (found,) = drift_alerts(notification(alert(fingerprint="abc")))
    assert (found.alertname, found.model_name, found.fingerprint) == (
        "ModelFeatureDrift",
        "iris_classifier",
        "abc",
    )


def test_post_event_refuses_non_http_urls():
    with pytest.raises(EventPublishError, match="http"):
        post_event("file:///etc/passwd", {"name": "x"})
