"""The Dockerfile reader the image tests rely on (tests/dockerfile_stages.py)."""

from __future__ import annotations

from pathlib import Path

from tests.dockerfile_stages import parse

DOCKERFILE = """\
FROM python:3.11.14-slim-bookworm AS base
ENV A=1 \\
    B=2
WORKDIR /app
CMD ["python", "-m", "app"]

FROM base AS child
ENV B=3
COPY src src
USER 10001:10001

FROM child AS grandchild
RUN true

FROM debian:12.0 AS other
"""


def test_a_stage_built_from_an_earlier_one_inherits_it(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(DOCKERFILE)
    base, child, grandchild, other = parse(path)
    assert child.base == grandchild.base == "python:3.11.14-slim-bookworm"
    assert child.env == {"A": "1", "B": "3"}  # its own ENV after the inherited one
    assert (child.workdir, child.cmd, child.user) == (
        "/app",
        ["python", "-m", "app"],
        "10001:10001",
    )
    assert [c.sources for c in grandchild.copies] == [["src"]]
    assert grandchild.lineage == ["grandchild", "child", "base"]
    assert (base.user, base.copies) == (None, [])  # a parent gains nothing from its children
    assert (other.base, other.lineage, other.parent) == ("debian:12.0", ["other"], None)
