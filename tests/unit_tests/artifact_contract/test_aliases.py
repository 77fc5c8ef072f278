"""Alias pointers and their history: atomic moves, a stack that rollbacks walk back."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.artifact_contract.aliases import (
    alias_stack,
    list_aliases,
    move_alias,
    read_alias,
    read_history,
)


def test_moves_are_recorded_and_listed(tmp_path: Path) -> None:
    assert read_alias(tmp_path, "champion") is None
    assert move_alias(tmp_path, "champion", "v1", action="promote") is None
    assert move_alias(tmp_path, "champion", "v2", action="promote") == "v1"
    move_alias(tmp_path, "challenger", "v3", action="promote")
    assert read_alias(tmp_path, "champion") == "v2"
    assert list_aliases(tmp_path) == {"challenger": "v3", "champion": "v2"}
    history = read_history(tmp_path, "champion")
    assert [(h["action"], h["version"], h["previous"]) for h in history] == [
        ("promote", "v1", None),
        ("promote", "v2", "v1"),
    ]
    assert not [p for p in (tmp_path / "aliases").iterdir() if p.name.startswith(".")]


def test_rollbacks_walk_back_through_promotions() -> None:
    def entry(action: str, version: str) -> dict[str, str]:
        return {"action": action, "version": version}

    history = [entry("promote", "v1"), entry("promote", "v2"), entry("promote", "v3")]
    assert alias_stack(history) == ["v1", "v2", "v3"]
    history.append(entry("rollback", "v2"))
    assert alias_stack(history) == ["v1", "v2"]
    history.append(entry("rollback", "v1"))
    assert alias_stack(history) == ["v1"]


@pytest.mark.parametrize("alias", ["Champion", "../x", "", "1st"])
def test_bad_alias_names_are_refused(tmp_path: Path, alias: str) -> None:
    with pytest.raises(ValueError, match="alias"):
        move_alias(tmp_path, alias, "v1", action="promote")
