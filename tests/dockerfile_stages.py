"""A small Dockerfile reader for the tests: stages, and per stage its instructions.

It understands what this repo's Dockerfile uses (FROM ... AS, ENV, ARG, COPY with flags, WORKDIR,
USER, RUN, CMD/HEALTHCHECK in exec form, LABEL, EXPOSE) and refuses what it cannot read, so a
Dockerfile change the runtime test cannot reproduce fails loudly instead of being ignored.
A stage built ``FROM`` an earlier stage inherits it: its ``base`` is that stage's base image
and its instructions start with that stage's (``parent`` names it).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Copy:
    sources: list[str]
    dest: str
    from_stage: str | None
    flags: dict[str, str]


@dataclass
class Stage:
    name: str | None
    base: str  # the image it starts from, through any parent stages
    instructions: list[Instruction] = field(default_factory=list)
    parent: Stage | None = None  # the earlier stage it is built FROM, if any

    @property
    def lineage(self) -> list[str]:
        """This stage's name and its parents' names, nearest first."""
        names, current = [], self
        while current is not None:
            if current.name is not None:
                names.append(current.name)
            current = current.parent
        return names

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    @property
    def env(self) -> dict[str, str]:
        """ENV values in order; ``$VAR``/``${VAR}`` expanded from earlier ENV lines only."""
        env: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for key, value in parse_env(instruction.args).items():
                env[key] = expand(value, env)
        return env

    @property
    def copies(self) -> list[Copy]:
        return [parse_copy(i.args) for i in self.all("COPY")]

    @property
    def workdir(self) -> str:
        current = "/"
        for instruction in self.all("WORKDIR"):
            path = instruction.args.strip()
            current = path if path.startswith("/") else f"{current.rstrip('/')}/{path}"
        return current

    @property
    def user(self) -> str | None:
        instruction = self.last("USER")
        return instruction.args.strip() if instruction else None

    @property
    def cmd(self) -> list[str]:
        instruction = self.last("CMD")
        if instruction is None:
            raise ValueError("stage has no CMD")
        return exec_form(instruction.args, "CMD")

    @property
    def healthcheck(self) -> tuple[dict[str, str], list[str]] | None:
        instruction = self.last("HEALTHCHECK")
        if instruction is None:
            return None
        options, _, command = instruction.args.partition("CMD")
        flags = dict(
            opt.removeprefix("--").split("=", 1) for opt in shlex.split(options) if "=" in opt
        )
        return flags, exec_form(command, "HEALTHCHECK CMD")


def exec_form(text: str, what: str) -> list[str]:
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} must be in exec (JSON array) form: {text!r}") from exc
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ValueError(f"{what} must be a JSON array of strings: {text!r}")
    return value


def parse_env(text: str) -> dict[str, str]:
    parts = shlex.split(text, posix=True)
    if parts and "=" not in parts[0]:  # legacy `ENV KEY value with spaces`
        return {parts[0]: " ".join(parts[1:])}
    return dict(part.split("=", 1) for part in parts)


def expand(value: str, env: dict[str, str]) -> str:
    for key, current in sorted(env.items(), key=lambda kv: -len(kv[0])):
        value = value.replace("${" + key + "}", current).replace("$" + key, current)
    return value


def parse_copy(text: str) -> Copy:
    parts = shlex.split(text)
    flags: dict[str, str] = {}
    while parts and parts[0].startswith("--"):
        key, _, value = parts.pop(0).removeprefix("--").partition("=")
        flags[key] = value
    if parts and parts[0].startswith("["):
        parts = json.loads(text[text.index("[") :])
    if len(parts) < 2:
        raise ValueError(f"COPY needs sources and a destination: {text!r}")
    return Copy(parts[:-1], parts[-1], flags.get("from"), flags)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations; drop comments and blank lines."""
    lines: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        lines.append((start, buffer + stripped))
        buffer = ""
    if buffer:
        lines.append((start, buffer))
    return lines


def parse(path: Path = DOCKERFILE) -> list[Stage]:
    stages: list[Stage] = []
    for number, line in logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            parent = next((s for s in stages if s.name == words[0]), None)
            if parent is None:
                stages.append(Stage(name=name, base=words[0]))
            else:
                inherited = list(parent.instructions)
                stages.append(Stage(name=name, base=parent.base, instructions=inherited,
                                    parent=parent))  # fmt: skip
            continue
        if not stages:
            if keyword == "ARG":
                continue
            raise ValueError(f"line {number}: {keyword} before the first FROM")
        stages[-1].instructions.append(Instruction(keyword, args.strip(), number))
    if not stages:
        raise ValueError(f"{path} has no FROM")
    return stages


def stage(name: str, path: Path = DOCKERFILE) -> Stage:
    for candidate in parse(path):
        if candidate.name == name:
            return candidate
    raise KeyError(f"no stage named {name!r} in {path}")


def final_stage(path: Path = DOCKERFILE) -> Stage:
    """The stage `docker build` produces without --target (the last one)."""
    return parse(path)[-1]
