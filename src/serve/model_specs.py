"""Which models a process serves: ``MODEL_NAMES`` entries such as ``iris_classifier@champion``.

An entry is a model name (a folder under ``ARTIFACTS_DIR``) that follows its ``LATEST``
pointer, or ``<name>@<alias>`` that follows the alias the registry tool moves
(``python -m src.artifact_contract.registry``). The entry :data:`ALL_MODELS` (``*``) adds
every other model found under ``ARTIFACTS_DIR``, picked up as it is published.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from src.artifact_contract.aliases import ALIAS_NAME_RE
from src.artifact_contract.layout import MODEL_NAME_PATTERN

ALL_MODELS = "*"
ALIAS_SEPARATOR = "@"
MODEL_NAME_RE = re.compile(MODEL_NAME_PATTERN)


@dataclass(frozen=True)
class ModelSpec:
    """One served model: its name and what it follows (an alias, a pinned version, or
    ``LATEST`` when both are None)."""

    name: str
    alias: str | None = None
    version: str | None = None

    @property
    def follows(self) -> str:
        """What picks the served version: ``alias:<name>``, ``version:<v>`` or ``LATEST``."""
        if self.alias is not None:
            return f"alias:{self.alias}"
        if self.version is not None:
            return f"version:{self.version}"
        return "LATEST"


def parse_model_entry(entry: str) -> ModelSpec:
    """``name`` or ``name@alias`` -> :class:`ModelSpec`; ValueError naming the bad part."""
    name, sep, alias = entry.strip().partition(ALIAS_SEPARATOR)
    if not MODEL_NAME_RE.match(name):
        raise ValueError(
            f"{entry!r}: a model name is lower-case letters, digits, '_' and '-' "
            "(optionally followed by @<alias>)"
        )
    if sep and not ALIAS_NAME_RE.match(alias):
        raise ValueError(
            f"{entry!r}: an alias starts with a lower-case letter, then letters, digits, "
            "'_' or '-' (at most 64 characters)"
        )
    return ModelSpec(name, alias if sep else None)


def parse_model_names(entries: list[str]) -> tuple[list[ModelSpec], bool]:
    """The named models in order and whether :data:`ALL_MODELS` was given.

    A model named twice is an error (two stores would race for one name).
    """
    specs: list[ModelSpec] = []
    serve_all = False
    for entry in entries:
        if entry.strip() == ALL_MODELS:
            serve_all = True
            continue
        spec = parse_model_entry(entry)
        if any(known.name == spec.name for known in specs):
            raise ValueError(f"model {spec.name!r} is named twice")
        specs.append(spec)
    return specs, serve_all
