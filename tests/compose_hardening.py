"""The serving container's hardening as ``docker run`` flags, read from docker-compose.yaml.

The image test and ``benchmarks/image_footprint.py`` run the image by hand with the same
restrictions compose applies to ``ml-api-service`` (read-only root filesystem, its tmpfs, the
dropped capabilities, no new privileges), so a change to the compose file reaches both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yaml"


def hardening_flags(service: str = "ml-api-service", compose: Path = COMPOSE) -> list[str]:
    """``--read-only``, ``--tmpfs``, ``--cap-drop`` and ``--security-opt`` for ``service``."""
    spec: dict[str, Any] = yaml.safe_load(compose.read_text())["services"][service]
    flags = ["--read-only"] if spec.get("read_only") else []
    for mount in spec.get("tmpfs", []):
        flags += ["--tmpfs", mount]
    for capability in spec.get("cap_drop", []):
        flags += ["--cap-drop", capability]
    for option in spec.get("security_opt", []):
        flags += ["--security-opt", option]
    return flags
