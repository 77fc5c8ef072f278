"""system_tool finds a tool on PATH, skips without one, and fails when tools are required."""

from pathlib import Path

import pytest

from tests.system_tools import system_tool


@pytest.fixture
def path_with_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holding one directory with one executable, ``second``."""
    tool = tmp_path / "second"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("REQUIRE_SYSTEM_TOOLS", raising=False)
    return tool


def test_the_first_name_found_is_returned(path_with_tool: Path) -> None:
    assert system_tool("first", "second", package="pkg") == str(path_with_tool)


def test_a_missing_tool_skips_with_the_package_to_install(path_with_tool: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match=r"first not installed .*apt-get install pkg"):
        system_tool("first", package="pkg")


def test_a_missing_tool_fails_when_tools_are_required(
    path_with_tool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUIRE_SYSTEM_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="REQUIRE_SYSTEM_TOOLS=1 requires it"):
        system_tool("first", package="pkg")
