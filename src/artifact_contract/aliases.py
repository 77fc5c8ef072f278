"""Aliases: names (``champion``, ``challenger``) that point at one version of a model.

``<artifacts>/<model_name>/aliases/<alias>`` holds one line, the version, and is replaced
atomically like ``LATEST`` (write a temporary file, fsync, rename, fsync the directory).
``<alias>.history`` next to it is append-only, one JSON object a line per move:
``{"at": <UTC ISO time>, "action": "promote" | "rollback", "version": ..., "previous": ...}``.
A rollback returns to the version the alias named before the current one: promotions push
onto the alias's stack, rollbacks pop it (:func:`alias_stack`).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from src.artifact_contract.layout import HIDDEN_PREFIX, VERSION_NAME_RE

ALIASES_DIR = "aliases"
HISTORY_SUFFIX = ".history"
ALIAS_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def alias_file(model_dir: Path, alias: str) -> Path:
    """The pointer file of ``alias`` (ValueError for a name the contract does not allow)."""
    if not ALIAS_NAME_RE.match(alias):
        raise ValueError(
            f"alias {alias!r}: starts with a lower-case letter, then letters, digits, '_' or '-'"
        )
    return model_dir / ALIASES_DIR / alias


def read_alias(model_dir: Path, alias: str) -> str | None:
    """The version ``alias`` names, or None when the alias is not set (or malformed)."""
    try:
        version = alias_file(model_dir, alias).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return version if VERSION_NAME_RE.match(version) else None


def list_aliases(model_dir: Path) -> dict[str, str]:
    """Every set alias of a model and the version it names."""
    directory = model_dir / ALIASES_DIR
    if not directory.is_dir():
        return {}
    aliases = {}
    for path in sorted(directory.iterdir()):
        if path.name.endswith(HISTORY_SUFFIX) or path.name.startswith(HIDDEN_PREFIX):
            continue
        version = read_alias(model_dir, path.name) if ALIAS_NAME_RE.match(path.name) else None
        if version is not None:
            aliases[path.name] = version
    return aliases


def write_pointer(path: Path, version: str) -> None:
    """Replace the one-line pointer file ``path`` atomically (readers see old or new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{HIDDEN_PREFIX}{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(version + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_history(model_dir: Path, alias: str) -> list[dict[str, Any]]:
    """The alias's moves, oldest first (lines that are not JSON objects are skipped)."""
    path = alias_file(model_dir, alias).with_name(alias + HISTORY_SUFFIX)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("version"), str):
            entries.append(entry)
    return entries


def alias_stack(history: list[dict[str, Any]]) -> list[str]:
    """The versions a rollback walks back through, oldest first; the last is the current."""
    stack: list[str] = []
    for entry in history:
        if entry.get("action") == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != entry["version"]:
                stack.append(entry["version"])
        else:
            stack.append(entry["version"])
    return stack


def move_alias(model_dir: Path, alias: str, version: str, *, action: str) -> str | None:
    """Point ``alias`` at ``version`` and record the move; returns the previous version.

    The history line is written (and fsynced) first: a crash between the two leaves a
    history that names a move the pointer has not made yet, never a move without a record.
    """
    pointer = alias_file(model_dir, alias)
    previous = read_alias(model_dir, alias)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "at": datetime.now(UTC).isoformat(),
        "action": action,
        "version": version,
        "previous": previous,
    }
    with open(pointer.with_name(alias + HISTORY_SUFFIX), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    write_pointer(pointer, version)
    return previous
