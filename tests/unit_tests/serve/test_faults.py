"""Fault injection: every broken artifact is refused with a clear reason.

Each fault is checked twice: as the first model at start-up (``/health`` 503 naming the
reason, predictions 503) and as a new version while a good one serves (the old model keeps
serving; the refusal is logged and counted in ``serve_model_reload_failures_total``).

The service runs with signatures required (the default). Most faults are *re-signed* after
they are introduced, i.e. a broken artifact that a trainer validly signed: that exercises the
checks behind the signature (sha256, schema, library versions, the pickle itself). Damage
after signing is refused by the signature check already (tests/unit_tests/serve/test_signing.py).
"""

from __future__ import annotations

import errno
import io
import os
import threading
from collections.abc import Callable
from pathlib import Path

import joblib
import pytest
import sklearn

from src.serve.app import create_app
from tests.artifact_factory import (
    BuiltArtifact,
    new_version,
    replace_model,
    rewrite_metadata,
    set_latest,
)
from tests.unit_tests.serve.hardening_support import (
    build_signed,
    captured_logs,
    resign,
    signed_settings,
)
from tests.unit_tests.serve.helpers import (
    ADMIN,
    AUTH,
    IRIS_ROW,
    AppClient,
    metric_value,
    wait_until,
)

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]


def model_missing(built: BuiltArtifact) -> None:
    (built.directory / "model.joblib").unlink()


def model_truncated(built: BuiltArtifact) -> None:
    model = built.directory / "model.joblib"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])


def model_corrupted(built: BuiltArtifact) -> None:
    model = built.directory / "model.joblib"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))


def model_garbage_with_matching_hash(built: BuiltArtifact) -> None:
    replace_model(built.directory, os.urandom(2048))


def model_not_a_pipeline(built: BuiltArtifact) -> None:
    buffer = io.BytesIO()
    joblib.dump({"weights": [1, 2, 3]}, buffer)
    replace_model(built.directory, buffer.getvalue())


def metadata_missing(built: BuiltArtifact) -> None:
    (built.directory / "metadata.json").unlink()


def metadata_not_json(built: BuiltArtifact) -> None:
    (built.directory / "metadata.json").write_text('{"schema_version": 1, ')


def metadata_unknown_schema_version(built: BuiltArtifact) -> None:
    rewrite_metadata(built.directory, schema_version=2)


def incompatible_sklearn(built: BuiltArtifact) -> None:
    major, minor = sklearn.__version__.split(".")[:2]
    versions = dict(built.metadata["versions"], **{"scikit-learn": f"{major}.{int(minor) + 1}.0"})
    rewrite_metadata(built.directory, versions=versions)


# (fault, re-sign afterwards?, reason in /health and logs, metrics reason code)
FAULTS: list[tuple[Callable[[BuiltArtifact], None], bool, str, str]] = [
    (model_missing, True, "model.joblib is missing", "artifact_invalid"),
    (model_truncated, True, "truncated or replaced", "artifact_integrity"),
    (model_corrupted, True, "sha256 of model.joblib does not match", "artifact_integrity"),
    (
        model_garbage_with_matching_hash,
        True,
        "model.joblib could not be deserialised",
        "artifact_load_failed",
    ),
    (model_not_a_pipeline, True, "does not hold a scikit-learn estimator", "artifact_incompatible"),
    (metadata_missing, False, "metadata.json is missing", "artifact_invalid"),
    (metadata_not_json, True, "metadata.json is not valid JSON", "artifact_invalid"),
    (
        metadata_unknown_schema_version,
        True,
        "schema_version 2 is not supported",
        "artifact_incompatible",
    ),
    (incompatible_sklearn, True, "major.minor must match", "artifact_incompatible"),
    (model_corrupted, False, "signature does not match", "artifact_signature_invalid"),
]
FAULT_IDS = [
    "model-missing",
    "model-truncated",
    "model-corrupted",
    "model-garbage-hash-matches",
    "model-not-a-pipeline",
    "metadata-missing",
    "metadata-not-json",
    "metadata-unknown-schema",
    "sklearn-incompatible",
    "corrupted-after-signing",
]


def _publish_broken(
    artifacts: Path, fault: Callable[[BuiltArtifact], None], sign_after: bool, **kwargs: object
) -> BuiltArtifact:
    built = build_signed(artifacts, set_latest=False, **kwargs)  # type: ignore[arg-type]
    fault(built)
    if sign_after:
        resign(built)
    set_latest(artifacts, built.model_name, built.model_version)
    return built


def _failures(client: AppClient, reason: str | None = None) -> float:
    labels = {"model_name": "iris_classifier"}
    if reason is not None:
        labels["reason"] = reason
    text = client.get("/metrics").text
    if reason is not None:
        return metric_value(text, "serve_model_reload_failures_total", labels)
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("serve_model_reload_failures_total{")
    )


@pytest.mark.parametrize(("fault", "sign_after", "reason", "code"), FAULTS, ids=FAULT_IDS)
def test_fault_at_start_up_is_503_with_the_reason(
    artifacts: Path,
    fault: Callable[[BuiltArtifact], None],
    sign_after: bool,
    reason: str,
    code: str,
) -> None:
    _publish_broken(artifacts, fault, sign_after)
    with AppClient(create_app(signed_settings(artifacts))) as client:
        health = client.get("/health")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "not_ready"
        assert body["reason"].startswith("model refused: ")
        assert reason in body["reason"]
        assert str(artifacts) not in body["reason"]  # no server paths for anonymous clients
        assert _failures(client, code) == 1
        r = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "model_not_ready"
        assert client.get("/health/live").status_code == 200


@pytest.mark.parametrize(("fault", "sign_after", "reason", "code"), FAULTS, ids=FAULT_IDS)
def test_fault_on_reload_keeps_the_old_model_serving(
    artifacts: Path,
    fault: Callable[[BuiltArtifact], None],
    sign_after: bool,
    reason: str,
    code: str,
) -> None:
    good = build_signed(artifacts, model_version=new_version(-10))
    with AppClient(create_app(signed_settings(artifacts))) as client, captured_logs() as logs:
        broken = _publish_broken(artifacts, fault, sign_after)
        r = client.post("/admin/reload", headers=ADMIN)
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "reload_failed"
        assert reason in r.json()["error"]["message"]
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["model_version"] == good.model_version
        p = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert p.status_code == 200
        assert p.json()["model_version"] == good.model_version
        assert _failures(client, code) == 1
    text = logs.getvalue()
    assert f"model version {broken.model_version} refused, still serving {good.model_version}" in (
        text
    )
    assert reason in text


def test_the_poller_refuses_a_broken_version_once_not_in_a_loop(artifacts: Path) -> None:
    good = build_signed(artifacts, model_version=new_version(-10))
    settings = signed_settings(artifacts, model_poll_seconds=0.02)
    with AppClient(create_app(settings)) as client:
        _publish_broken(artifacts, model_not_a_pipeline, True)
        wait_until(lambda: _failures(client, "artifact_incompatible") == 1)
        threading_pause(0.3)  # many poll intervals
        assert _failures(client) == 1
        assert client.get("/health").json()["model_version"] == good.model_version


def threading_pause(seconds: float) -> None:
    threading.Event().wait(seconds)


# --- LATEST pointing nowhere ----------------------------------------------------------------------


def test_latest_pointing_nowhere_at_start_up_is_503(artifacts: Path) -> None:
    build_signed(artifacts)
    (artifacts / "iris_classifier" / "LATEST").write_text("20990101T000000000000Z\n")
    with AppClient(create_app(signed_settings(artifacts))) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert (
            "names version '20990101T000000000000Z', which does not exist"
            in (health.json()["reason"])
        )


def test_latest_pointing_nowhere_on_reload_is_logged_counted_and_the_old_serves(
    artifacts: Path,
) -> None:
    good = build_signed(artifacts)
    settings = signed_settings(artifacts, model_poll_seconds=0.02)
    with AppClient(create_app(settings)) as client, captured_logs() as logs:
        (artifacts / "iris_classifier" / "LATEST").write_text("20990101T000000000000Z\n")
        wait_until(lambda: _failures(client, "artifact_not_found") == 1)
        threading_pause(0.3)
        assert _failures(client, "artifact_not_found") == 1  # once, not once per poll
        assert client.get("/health").json()["model_version"] == good.model_version
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200
    assert "which does not exist" in logs.getvalue()
    assert f"still serving {good.model_version}" in logs.getvalue()


# --- artifacts directory unreadable ---------------------------------------------------------------


def deny_reads_under(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """What ``chmod 000 root`` does for a non-root user: root itself can be stat'ed, but not
    listed, and nothing under it can be stat'ed or opened (EACCES). Root (CI) ignores chmod,
    so the permission error is injected at the OS-call level instead."""
    root_text = str(root)

    def denied(path: object) -> bool:
        text = os.fsdecode(path) if isinstance(path, str | bytes | os.PathLike) else ""
        return text.startswith(root_text + os.sep)

    def error(path: object) -> PermissionError:
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))  # type: ignore[arg-type]

    real_stat, real_open = os.stat, io.open
    real_listdir, real_scandir = os.listdir, os.scandir

    def stat(path: object, *args: object, **kwargs: object) -> object:
        if denied(path):
            raise error(path)
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    def listdir(path: object = ".") -> object:
        if denied(path) or os.fsdecode(path) == root_text:  # type: ignore[arg-type]
            raise error(path)
        return real_listdir(path)  # type: ignore[arg-type]

    def scandir(path: object = ".") -> object:
        if denied(path) or os.fsdecode(path) == root_text:  # type: ignore[arg-type]
            raise error(path)
        return real_scandir(path)  # type: ignore[arg-type]

    def open_(file: object, *args: object, **kwargs: object) -> object:
        if denied(file):
            raise error(file)
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "listdir", listdir)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(io, "open", open_)


def test_unreadable_artifacts_dir_at_start_up_is_503(
    artifacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_signed(artifacts)
    deny_reads_under(monkeypatch, artifacts)
    with AppClient(create_app(signed_settings(artifacts))) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert "permission denied" in health.json()["reason"]
        assert str(artifacts) not in health.json()["reason"]
        assert client.get("/health/live").status_code == 200


def test_unreadable_artifacts_dir_on_reload_keeps_the_old_model(
    artifacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = build_signed(artifacts)
    with AppClient(create_app(signed_settings(artifacts))) as client, captured_logs() as logs:
        build_signed(artifacts, model_version=new_version(5))
        deny_reads_under(monkeypatch, artifacts)
        r = client.post("/admin/reload", headers=ADMIN)
        assert r.status_code == 409
        assert "permission denied" in r.json()["error"]["message"]
        assert _failures(client, "artifact_not_found") == 1
        monkeypatch.undo()
        assert client.get("/health").json()["model_version"] == good.model_version
        assert client.post("/predict", json=IRIS_ROW, headers=AUTH).status_code == 200
    assert "permission denied" in logs.getvalue()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores chmod 000")
def test_chmod_000_artifacts_dir_at_start_up_is_503(artifacts: Path) -> None:
    build_signed(artifacts)
    artifacts.chmod(0)
    try:
        with AppClient(create_app(signed_settings(artifacts))) as client:
            health = client.get("/health")
            assert health.status_code == 503
            assert "permission denied" in health.json()["reason"]
    finally:
        artifacts.chmod(0o755)


def test_an_incompatible_sklearn_artifact_is_never_unpickled(
    artifacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(joblib, "load", lambda *a, **k: calls.append(a))
    _publish_broken(artifacts, incompatible_sklearn, True)
    with AppClient(create_app(signed_settings(artifacts))) as client:
        assert client.get("/health").status_code == 503
    assert calls == []
