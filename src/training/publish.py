"""Atomic publishing of a model artifact (docs/artifact.md, "Layout").

Everything is written into ``<output_dir>/<model_name>/.tmp-<random>/`` and fsynced, the
directory is renamed to ``<model_version>/`` and ``LATEST`` is then replaced atomically
(``LATEST.tmp-<random>`` + ``os.replace``). A failure or crash before the rename leaves no
visible version and ``LATEST`` untouched; readers ignore entries starting with ``.``.

Versions are the UTC publish time ``YYYYMMDDTHHMMSSffffffZ``; a publisher that finds an equal
or newer version bumps its own by a microsecond, so versions sort in publish order.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from loguru import logger

from src.artifact_contract.aliases import move_alias
from src.artifact_contract.documents import parse_json_object
from src.artifact_contract.errors import DocumentError
from src.artifact_contract.keys import SigningKey
from src.artifact_contract.layout import (
    LATEST_FILE,
    METADATA_FILE,
    MODEL_FILE,
    ONNX_FILE,
    PUBLISHED_VERSION_RE,
    SIGNATURE_FILE,
    TMP_PREFIX,
    VERSION_FORMAT,
    is_hidden,
)
from src.artifact_contract.signature import signing_entry
from src.training.errors import PublishError
from src.training.metadata import finalize
from src.training.signing import sign_directory

RENAME_ATTEMPTS = 5


@dataclass(frozen=True)
class PublishedArtifact:
    """Where a model was published and the metadata written with it."""

    directory: Path
    model_name: str
    model_version: str
    metadata: dict[str, Any]

    @property
    def signed(self) -> bool:
        """True when ``signature.json`` was written."""
        return self.metadata.get("signing") is not None


def format_version(moment: datetime) -> str:
    """A datetime as a model version string (UTC)."""
    return moment.astimezone(UTC).strftime(VERSION_FORMAT)


def parse_version(version: str) -> datetime:
    """The UTC datetime a version string encodes."""
    return datetime.strptime(version, VERSION_FORMAT).replace(tzinfo=UTC)


def list_versions(model_dir: Path) -> list[str]:
    """Published versions under ``model_dir``, oldest first (hidden/temporary entries ignored)."""
    if not model_dir.is_dir():
        return []
    return sorted(
        entry.name
        for entry in model_dir.iterdir()
        if not is_hidden(entry.name) and PUBLISHED_VERSION_RE.match(entry.name) and entry.is_dir()
    )


def read_latest(model_dir: Path) -> str | None:
    """The version ``LATEST`` names, or None."""
    try:
        value = (model_dir / LATEST_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return value or None


def next_version(model_dir: Path, now: datetime | None = None) -> str:
    """A version for now that sorts after every existing version and ``LATEST``."""
    moment = now or datetime.now(UTC)
    existing = list_versions(model_dir)
    latest = read_latest(model_dir)
    newest = max(
        [v for v in [*existing, latest] if v and PUBLISHED_VERSION_RE.match(v)], default=None
    )
    if newest is not None and format_version(moment) <= newest:
        moment = parse_version(newest) + timedelta(microseconds=1)
    return format_version(moment)


def find_published(model_dir: Path, pathspec: str) -> str | None:
    """The version already published from Metaflow run ``pathspec``, if any."""
    for version in reversed(list_versions(model_dir)):
        try:
            metadata = parse_json_object(
                (model_dir / version / METADATA_FILE).read_bytes(), METADATA_FILE
            )
        except (OSError, DocumentError):
            continue
        if metadata.get("run", {}).get("pathspec") == pathspec:
            return version
    return None


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def metadata_bytes(metadata: dict[str, Any]) -> bytes:
    """Serialised metadata.json (non-finite floats become null)."""
    return (json.dumps(_json_safe(metadata), indent=2, allow_nan=False) + "\n").encode("utf-8")


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # pragma: no cover - directories cannot be fsynced on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def serialize_model(model: Any) -> bytes:
    """The joblib bytes of a fitted pipeline (exactly what is published as model.joblib)."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def _write_version(
    tmp: Path,
    draft: dict[str, Any],
    version: str,
    model_blob: bytes,
    signing_key: SigningKey | None,
) -> dict[str, Any]:
    signing = signing_entry(signing_key) if signing_key else None
    metadata = finalize(
        draft,
        model_version=version,
        created_at=datetime.now(UTC).isoformat(),
        model_sha256=hashlib.sha256(model_blob).hexdigest(),
        model_size=len(model_blob),
        signing=signing,
    )
    _write_file(tmp / METADATA_FILE, metadata_bytes(metadata))
    if signing_key is not None:
        _write_file(tmp / SIGNATURE_FILE, sign_directory(tmp, signing_key))
    _fsync_dir(tmp)
    return metadata


def _update_latest(model_dir: Path, version: str) -> None:
    current = read_latest(model_dir)
    if current is not None and current >= version:
        logger.warning("LATEST already names {} (newer than {}); left as is", current, version)
        return
    tmp = model_dir / f"{LATEST_FILE}{TMP_PREFIX}{secrets.token_hex(6)}"
    try:
        _write_file(tmp, (version + "\n").encode("utf-8"))
        os.replace(tmp, model_dir / LATEST_FILE)
        _fsync_dir(model_dir)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def publish_artifact(
    output_dir: str | Path,
    draft: dict[str, Any],
    model_blob: bytes,
    onnx_bytes: bytes | None = None,
    signing_key: SigningKey | None = None,
    alias: str | None = None,
) -> PublishedArtifact:
    """Publish a model atomically and point ``LATEST`` at it (and ``alias``, when given,
    moved and recorded as the registry tool's ``promote`` does).

    ``model_blob`` is the joblib bytes of the fitted pipeline (`serialize_model`), written
    unchanged so its sha256 matches the run's ``model_joblib`` artifact; ``draft`` is the
    run's draft metadata; ``onnx_bytes`` is ``model.onnx`` when it was exported.
    """
    model_name = draft["model_name"]
    model_dir = Path(output_dir) / model_name
    if not model_blob:
        raise PublishError("the model is empty")
    if (onnx_bytes is not None) != ((draft.get("onnx") or {}).get("path") == ONNX_FILE):
        raise PublishError("ONNX bytes and metadata onnx.path disagree")

    tmp: Path | None = None
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        tmp = model_dir / f"{TMP_PREFIX}{secrets.token_hex(8)}"
        tmp.mkdir()
        _write_file(tmp / MODEL_FILE, model_blob)
        if onnx_bytes is not None:
            _write_file(tmp / ONNX_FILE, onnx_bytes)
        for attempt in range(RENAME_ATTEMPTS):
            version = next_version(model_dir)
            metadata = _write_version(tmp, draft, version, model_blob, signing_key)
            try:
                os.rename(tmp, model_dir / version)
                break
            except OSError as exc:
                # a concurrent publisher took this version name: pick a later one and retry
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and attempt + 1 < RENAME_ATTEMPTS:
                    continue
                raise
        tmp = None
        _fsync_dir(model_dir)
    except OSError as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise PublishError(
            f"could not write the artifact under {model_dir}: {exc.strerror or exc}; "
            "nothing was published"
        ) from exc

    try:
        _update_latest(model_dir, version)
    except OSError as exc:
        raise PublishError(
            f"version {version} was written to {model_dir / version} but LATEST could not be "
            f"updated ({exc.strerror or exc}); LATEST still names {read_latest(model_dir)}"
        ) from exc
    directory = model_dir / version
    logger.info("published {} version {} to {}", model_name, version, directory)
    if alias is not None:
        try:
            move_alias(model_dir, alias, version, action="promote")
        except OSError as exc:
            raise PublishError(
                f"version {version} was published but alias {alias!r} could not be moved "
                f"({exc.strerror or exc}); move it with: python -m "
                f"src.artifact_contract.registry promote {model_name} {version} --alias {alias}"
            ) from exc
        logger.info("alias {}@{} now names {}", model_name, alias, version)
    return PublishedArtifact(directory, model_name, version, metadata)
