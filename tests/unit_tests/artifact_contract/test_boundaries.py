"""The contract package uses the standard library only and imports neither package."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CONTRACT = Path(__file__).resolve().parents[3] / "src" / "artifact_contract"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_the_contract_imports_only_the_standard_library_and_itself() -> None:
    modules = sorted(CONTRACT.rglob("*.py"))
    assert modules
    for path in modules:
        for name in imported_modules(path):
            top = name.split(".")[0]
            own = name == "src.artifact_contract" or name.startswith("src.artifact_contract.")
            assert own or top in sys.stdlib_module_names, f"{path.name} imports {name}"
