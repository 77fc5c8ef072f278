"""No comment or docstring in src/ or tests/ cites an issue or pull-request number or tells
the code's history.

Why the code is as it is belongs in the comment itself; the history belongs in git and the
docs (timings in docs/performance.md). Comments come from ``tokenize`` and docstrings from
``ast``, so string literals that are data (a test's fixture text, a message) are never flagged.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("src", "tests")
REFERENCE = re.compile(r"\b(?i:issues?|pull\s+requests?)\s*(?:#\s*)?\d+\b|\bPRs?\s*#?\s*\d+\b")
HISTORY = re.compile(
    r"\b(?:used to be|formerly|until now|(?:before|after) this change)\b"
    r"|\b(?:we|it|this|that) used to\b|\bwas (?:changed|renamed|moved) (?:from|to)\b",
    re.IGNORECASE,
)
DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def comments(source: str) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of every comment."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def docstrings(source: str) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of every line of every module, class and function docstring."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, DOCUMENTED) or not node.body:
            continue
        first = node.body[0]
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            for offset, line in enumerate(first.value.value.splitlines()):
                yield first.value.lineno + offset, line


def references(path: Path, root: Path = ROOT) -> list[str]:
    """``path:line: text`` (relative to ``root``) for each comment or docstring line citing an
    issue number or narrating history."""
    source = path.read_text(encoding="utf-8")
    found = []
    for line, text in sorted({*comments(source), *docstrings(source)}):
        if REFERENCE.search(text) or HISTORY.search(text):
            found.append(f"{path.relative_to(root)}:{line}: {text.strip()}")
    return found


def python_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for top in SCANNED for p in (root / top).rglob("*.py"))


def test_no_comment_or_docstring_cites_an_issue_or_narrates_history() -> None:
    hits = [hit for path in python_files() for hit in references(path)]
    if hits:
        pytest.fail(
            f"{len(hits)} comment or docstring line(s) citing an issue or narrating history:\n"
            + "\n".join(hits)
        )


SAMPLE = '''"""A module (issue 8) whose docstring cites an issue."""

MESSAGE = "see issue #12"  # data, not a comment: never flagged
PATTERN = "issues 3"


def handler():
    """Answers 422.

    Added for Issue #3, then changed.
    """
    return "issue 7"  # as issue 7 asked
    # this used to call the parser twice


def clean():
    # no reference here, only an issue tracker and tissue 5
    """Nothing to flag."""
    return "PR #4"
'''


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("issue 7", True),
        ("(issue 8)", True),
        ("see issue #12", True),
        ("issues 3 and 4", True),
        ("Issue#11", True),
        ("in pull request 40", True),
        ("PR #5", True),
        ("an issue with the tracker", False),
        ("tissue 5", False),
        ("issued 3 tokens", False),
        ("SPRING 2", False),
    ],
)
def test_issue_reference_pattern(text: str, flagged: bool) -> None:
    assert bool(REFERENCE.search(text)) is flagged


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("this used to return None", True),
        ("the parser used to be slower", True),
        ("formerly in guards.py", True),
        ("was renamed from ServeMiddleware", True),
        ("until now the batcher was duck typed", True),
        ("the key is used to sign the files", False),
        ("no longer than 100 characters", False),
    ],
)
def test_history_pattern(text: str, flagged: bool) -> None:
    assert bool(HISTORY.search(text)) is flagged


def test_comments_and_docstrings_are_flagged_string_data_is_not(tmp_path: Path) -> None:
    path = tmp_path / "sample.py"
    path.write_text(SAMPLE)
    assert references(path, root=tmp_path) == [
        "sample.py:1: A module (issue 8) whose docstring cites an issue.",
        "sample.py:10: Added for Issue #3, then changed.",
        "sample.py:12: # as issue 7 asked",
        "sample.py:13: # this used to call the parser twice",
    ]
