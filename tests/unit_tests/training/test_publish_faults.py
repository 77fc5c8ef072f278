"""Publishing under faults: a full disk or a crash at any file of a *signed* publish
leaves no partial version and ``LATEST`` intact; the next publish is unaffected.

test_publish.py covers fsync failing, the model file failing, the rename and the LATEST
replace. These add: the disk filling up half-way through each remaining file (model.onnx,
metadata.json, signature.json, the LATEST temp file), other write errors, and a hard crash
(no cleanup code runs) in the middle of writing each file.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from src.training import publish
from src.training.config_loader import validate_config_data
from src.training.errors import PublishError
from src.training.publish import list_versions, read_latest
from src.training.signing import SigningKey, verify_signature
from src.training.steps import train_and_evaluate
from tests.unit_tests.training.conftest import IRIS_CONFIG, publish_outcome

KEY = SigningKey("fake-publish-key", b"fake-publish-secret-not-real")  # pragma: allowlist secret


@pytest.fixture(scope="module")
def outcome():
    return train_and_evaluate(validate_config_data(IRIS_CONFIG))


def visible(model_dir: Path) -> list[str]:
    return sorted(p.name for p in model_dir.iterdir() if not p.name.startswith("."))


def hidden(model_dir: Path) -> list[str]:
    return sorted(p.name for p in model_dir.iterdir() if p.name.startswith("."))


def fail_half_way(monkeypatch: pytest.MonkeyPatch, target: str, error: int) -> list[Path]:
    """Make writing the file named ``target`` (or starting with it) write half its bytes, then
    fail with ``error`` - what a disk that fills up mid-file does."""
    real_write = publish._write_file
    hit: list[Path] = []

    def write(path: Path, data: bytes) -> None:
        if path.name == target or path.name.startswith(target + ".tmp"):
            hit.append(path)
            with path.open("wb") as handle:
                handle.write(data[: len(data) // 2])
            raise OSError(error, os.strerror(error))
        real_write(path, data)

    monkeypatch.setattr(publish, "_write_file", write)
    return hit


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
@pytest.mark.parametrize("target", ["model.onnx", "metadata.json", "signature.json"])
def test_disk_full_in_any_version_file_publishes_nothing(
    outcome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, error: int
) -> None:
    first = publish_outcome(outcome, tmp_path, KEY)
    model_dir = tmp_path / "iris_classifier"
    before = visible(model_dir)
    hit = fail_half_way(monkeypatch, target, error)
    with pytest.raises(PublishError, match="nothing was published") as info:
        publish_outcome(outcome, tmp_path, KEY)
    assert os.strerror(error) in str(info.value)
    assert hit, f"{target} was never written"
    monkeypatch.undo()
    assert visible(model_dir) == before
    assert hidden(model_dir) == []  # the half-written temporary directory was removed
    assert read_latest(model_dir) == first.model_version
    assert verify_signature(first.directory, {KEY.key_id: KEY.secret})
    # the next publish is unaffected
    second = publish_outcome(outcome, tmp_path, KEY)
    assert read_latest(model_dir) == second.model_version
    assert list_versions(model_dir) == [first.model_version, second.model_version]


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO])
def test_disk_full_writing_latest_keeps_the_old_pointer(
    outcome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    first = publish_outcome(outcome, tmp_path, KEY)
    model_dir = tmp_path / "iris_classifier"
    hit = fail_half_way(monkeypatch, "LATEST", error)
    with pytest.raises(PublishError, match=f"LATEST still names {first.model_version}"):
        publish_outcome(outcome, tmp_path, KEY)
    assert hit
    monkeypatch.undo()
    assert (model_dir / "LATEST").read_text() == first.model_version + "\n"
    assert not [p for p in model_dir.iterdir() if p.name.startswith("LATEST.tmp")]
    # The version renamed into place before the pointer failed is complete and verifies.
    newest = list_versions(model_dir)[-1]
    assert newest != first.model_version
    assert verify_signature(model_dir / newest, {KEY.key_id: KEY.secret})


class Killed(BaseException):
    """The process dies: no except/finally clean-up of ours is meant to run (like SIGKILL)."""


@pytest.mark.parametrize(
    "target", ["model.joblib", "model.onnx", "metadata.json", "signature.json"]
)
def test_a_crash_while_writing_any_file_leaves_only_a_hidden_temp_dir(
    outcome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    first = publish_outcome(outcome, tmp_path, KEY)
    model_dir = tmp_path / "iris_classifier"
    real_write = publish._write_file

    def write(path: Path, data: bytes) -> None:
        if path.name == target:
            with path.open("wb") as handle:
                handle.write(data[: len(data) // 3])
            raise Killed
        real_write(path, data)

    monkeypatch.setattr(publish, "_write_file", write)
    with pytest.raises(Killed):
        publish_outcome(outcome, tmp_path, KEY)
    monkeypatch.undo()
    assert visible(model_dir) == sorted(["LATEST", first.model_version])
    assert read_latest(model_dir) == first.model_version
    stale = hidden(model_dir)
    assert len(stale) == 1
    assert stale[0].startswith(".tmp-")  # readers ignore it
    assert list_versions(model_dir) == [first.model_version]
    second = publish_outcome(outcome, tmp_path, KEY)
    assert list_versions(model_dir) == [first.model_version, second.model_version]
    assert read_latest(model_dir) == second.model_version
