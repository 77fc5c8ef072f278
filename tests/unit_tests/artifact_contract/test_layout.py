"""Version and model names, and which directory entries readers ignore."""

from __future__ import annotations

from datetime import UTC, datetime

from src.artifact_contract.layout import (
    MODEL_NAME_PATTERN,
    PUBLISHED_VERSION_RE,
    TMP_PREFIX,
    VERSION_FORMAT,
    VERSION_NAME_RE,
    is_hidden,
)


def test_published_versions_are_readable_version_names_and_sort_in_time_order() -> None:
    early = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC).strftime(VERSION_FORMAT)
    late = datetime(2026, 11, 2, 3, 4, 5, 0, tzinfo=UTC).strftime(VERSION_FORMAT)
    assert early == "20260102T030405000006Z"
    for version in (early, late):
        assert PUBLISHED_VERSION_RE.match(version)
        assert VERSION_NAME_RE.match(version)
    assert early < late


def test_reader_version_names() -> None:
    assert VERSION_NAME_RE.match("v1.2-rc_3")
    for bad in (".tmp-abc", "../x", "a/b", "", "x" * 129):
        assert not VERSION_NAME_RE.match(bad)


def test_temporary_entries_are_hidden() -> None:
    assert is_hidden(TMP_PREFIX + "abc")
    assert is_hidden(".DS_Store")
    assert not is_hidden("20260102T030405000006Z")
    assert MODEL_NAME_PATTERN == r"^[a-z0-9][a-z0-9_-]*$"
