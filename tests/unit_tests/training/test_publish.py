"""Atomic publishing: versions sort in publish order, and no failure leaves a half version."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from datetime import UTC, datetime

import joblib
import jsonschema
import pytest

from src.training import publish
from src.training.config_loader import validate_config_data
from src.training.errors import PublishError
from src.training.publish import (
    find_published,
    list_versions,
    next_version,
    publish_artifact,
    read_latest,
)
from src.training.steps import train_and_evaluate
from tests.unit_tests.training.conftest import IRIS_CONFIG


@pytest.fixture(scope="module")
def outcome():
    return train_and_evaluate(validate_config_data(IRIS_CONFIG))


def do_publish(outcome, root, **kwargs):
    evaluation = outcome.evaluation
    return publish_artifact(
        root,
        evaluation.draft_metadata,
        evaluation.model_joblib,
        evaluation.onnx.model_bytes,
        **kwargs,
    )


def visible(model_dir):
    return sorted(p.name for p in model_dir.iterdir() if not p.name.startswith("."))


def test_published_layout(outcome, tmp_path, metadata_schema):
    published = do_publish(outcome, tmp_path)
    model_dir = tmp_path / "iris_classifier"
    assert published.directory == model_dir / published.model_version
    assert visible(model_dir) == sorted(["LATEST", published.model_version])
    assert read_latest(model_dir) == published.model_version
    assert (model_dir / "LATEST").read_text() == published.model_version + "\n"
    files = sorted(p.name for p in published.directory.iterdir())
    assert files == ["metadata.json", "model.joblib", "model.onnx"]
    metadata = json.loads((published.directory / "metadata.json").read_text())
    jsonschema.validate(metadata, metadata_schema)
    blob = (published.directory / "model.joblib").read_bytes()
    assert blob == outcome.evaluation.model_joblib
    assert metadata["model_file"]["sha256"] == hashlib.sha256(blob).hexdigest()
    assert metadata["model_file"]["size_bytes"] == len(blob)
    onnx = (published.directory / "model.onnx").read_bytes()
    assert metadata["onnx"]["sha256"] == hashlib.sha256(onnx).hexdigest()
    assert joblib.load(published.directory / "model.joblib").classes_.tolist() == [
        "setosa",
        "versicolor",
        "virginica",
    ]
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".")]


def test_versions_sort_in_publish_order(outcome, tmp_path):
    versions = [do_publish(outcome, tmp_path).model_version for _ in range(3)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3
    assert list_versions(tmp_path / "iris_classifier") == versions
    assert read_latest(tmp_path / "iris_classifier") == versions[-1]


def test_version_format_and_bump_past_newer_versions(tmp_path):
    model_dir = tmp_path / "m"
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert next_version(model_dir, now) == "20260102T030405678901Z"
    (model_dir / "20270101T000000000000Z").mkdir(parents=True)  # e.g. a clock that went back
    assert next_version(model_dir, now) == "20270101T000000000001Z"
    (model_dir / "LATEST").write_text("20280101T000000000000Z\n")
    assert next_version(model_dir, now) == "20280101T000000000001Z"


def test_crash_between_write_and_rename_leaves_nothing_visible(outcome, tmp_path, monkeypatch):
    first = do_publish(outcome, tmp_path)
    model_dir = tmp_path / "iris_classifier"
    before = visible(model_dir)

    def crash(src, dst):
        raise OSError(errno.EIO, "simulated crash before rename")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(PublishError, match="nothing was published"):
        do_publish(outcome, tmp_path)
    assert visible(model_dir) == before
    assert read_latest(model_dir) == first.model_version
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".tmp-")]


def test_hard_crash_leaves_a_hidden_temp_dir_that_readers_ignore(outcome, tmp_path, monkeypatch):
    first = do_publish(outcome, tmp_path)
    model_dir = tmp_path / "iris_classifier"

    def killed(src, dst):  # the process dies: no cleanup code runs
        raise SystemExit(137)

    monkeypatch.setattr(os, "rename", killed)
    with pytest.raises(SystemExit):
        do_publish(outcome, tmp_path)
    monkeypatch.undo()
    stale = [p for p in model_dir.iterdir() if p.name.startswith(".tmp-")]
    assert len(stale) == 1
    assert list_versions(model_dir) == [first.model_version]
    assert read_latest(model_dir) == first.model_version
    # the next publish is unaffected by the stale directory
    second = do_publish(outcome, tmp_path)
    assert list_versions(model_dir) == [first.model_version, second.model_version]
    assert read_latest(model_dir) == second.model_version


def test_full_disk_leaves_nothing_visible(outcome, tmp_path, monkeypatch):
    first = do_publish(outcome, tmp_path)
    model_dir = tmp_path / "iris_classifier"

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(PublishError, match="No space left on device; nothing was published"):
        do_publish(outcome, tmp_path)
    monkeypatch.undo()
    assert visible(model_dir) == sorted(["LATEST", first.model_version])
    assert read_latest(model_dir) == first.model_version
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".")]


def test_full_disk_on_first_publish_creates_no_version(outcome, tmp_path, monkeypatch):
    real_open = publish.Path.open

    def failing_open(self, mode="r", *args, **kwargs):
        if "w" in mode and self.name == "model.joblib":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(publish.Path, "open", failing_open)
    with pytest.raises(PublishError, match="No space left on device"):
        do_publish(outcome, tmp_path)
    assert visible(tmp_path / "iris_classifier") == []


def test_failed_latest_update_keeps_the_old_pointer(outcome, tmp_path, monkeypatch):
    first = do_publish(outcome, tmp_path)
    model_dir = tmp_path / "iris_classifier"

    def crash(src, dst):
        raise OSError(errno.EIO, "simulated crash before replace")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(PublishError, match=f"LATEST still names {first.model_version}"):
        do_publish(outcome, tmp_path)
    monkeypatch.undo()
    assert read_latest(model_dir) == first.model_version
    assert not [p for p in model_dir.iterdir() if p.name.startswith("LATEST.tmp")]
    # the version that was renamed into place is complete, never half-written
    newest = list_versions(model_dir)[-1]
    metadata = json.loads((model_dir / newest / "metadata.json").read_text())
    blob = (model_dir / newest / "model.joblib").read_bytes()
    assert metadata["model_file"]["sha256"] == hashlib.sha256(blob).hexdigest()


def test_concurrent_publisher_taking_the_name_is_retried(outcome, tmp_path, monkeypatch):
    model_dir = tmp_path / "iris_classifier"
    taken = "20260101T000000000000Z"
    (model_dir / taken).mkdir(parents=True)
    (model_dir / taken / "metadata.json").write_text("{}")  # another publisher's files
    real_next = publish.next_version
    calls = []

    def racing_next(directory, now=None):
        calls.append(1)
        return taken if len(calls) == 1 else real_next(directory, now)

    monkeypatch.setattr(publish, "next_version", racing_next)
    published = do_publish(outcome, tmp_path)
    assert published.model_version > taken
    assert json.loads((published.directory / "metadata.json").read_text())["model_version"] == (
        published.model_version
    )
    assert (model_dir / taken / "metadata.json").read_text() == "{}"


def test_latest_is_not_moved_backwards(outcome, tmp_path):
    model_dir = tmp_path / "iris_classifier"
    model_dir.mkdir()
    (model_dir / "LATEST").write_text("29990101T000000000000Z\n")
    published = do_publish(outcome, tmp_path)
    assert published.model_version > "29990101T000000000000Z"
    assert read_latest(model_dir) == published.model_version


def test_onnx_bytes_must_match_metadata(outcome, tmp_path):
    evaluation = outcome.evaluation
    with pytest.raises(PublishError, match="disagree"):
        publish_artifact(tmp_path, evaluation.draft_metadata, evaluation.model_joblib, None)
    with pytest.raises(PublishError, match="empty"):
        publish_artifact(tmp_path, evaluation.draft_metadata, b"", evaluation.onnx.model_bytes)


def test_find_published_by_run(outcome, tmp_path):
    published = do_publish(outcome, tmp_path)
    model_dir = tmp_path / "iris_classifier"
    assert find_published(model_dir, "local/0") == published.model_version
    assert find_published(model_dir, "TrainingWorkflow/1") is None


def test_publish_can_move_an_alias(outcome, tmp_path):
    from src.artifact_contract.aliases import read_alias, read_history

    first = do_publish(outcome, tmp_path)
    second = do_publish(outcome, tmp_path, alias="challenger")
    model_dir = tmp_path / second.model_name
    assert read_alias(model_dir, "challenger") == second.model_version
    assert read_alias(model_dir, "champion") is None
    (entry,) = read_history(model_dir, "challenger")
    assert entry["action"] == "promote"
    assert entry["previous"] is None
    assert first.model_version != second.model_version


def test_config_publish_alias_must_be_an_alias_name():
    data = {**IRIS_CONFIG, "publish_alias": "Not An Alias"}
    with pytest.raises(Exception, match="publish_alias"):
        validate_config_data(data)
