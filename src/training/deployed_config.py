"""Which training config a deployment carries: ``argo-workflows create --config <path>``.

A local ``run`` takes ``--config`` as the flow's ``IncludeFile`` parameter. Metaflow's
``create`` commands take no parameter values: they upload the parameter's *default* into the
datastore and compile its location into the deployment. The entry point therefore takes
``--config`` off a ``create`` command line and hands the path to the parameter's deploy-time
default through ``TRAINING_DEPLOY_CONFIG``; without either, the default config is deployed.
"""

from __future__ import annotations

import os
from typing import Any

from src.training.config import DEFAULT_CONFIG_PATH

DEPLOY_CONFIG_ENV = "TRAINING_DEPLOY_CONFIG"
DEPLOY_PUBLISH_LOCAL_ENV = "TRAINING_DEPLOY_PUBLISH_LOCAL"
DEPLOY_COMMANDS = ("argo-workflows", "step-functions")
TRUE_WORDS = ("1", "true", "yes")


def deployed_config_default(_context: Any = None) -> str:
    """The ``config`` default, evaluated when a run starts or a deployment is compiled."""
    return os.environ.get(DEPLOY_CONFIG_ENV) or DEFAULT_CONFIG_PATH


def deployed_publish_local_default(_context: Any = None) -> bool:
    """The ``publish_local`` default: true unless the deployment setting says otherwise."""
    value = os.environ.get(DEPLOY_PUBLISH_LOCAL_ENV)
    return True if value is None else value.strip().lower() in TRUE_WORDS


def is_deploy_command(argv: list[str]) -> bool:
    """True for ``... argo-workflows create ...`` (or ``step-functions create``)."""
    return (
        any(command in argv for command in DEPLOY_COMMANDS)
        and "create" in argv
        and "--help" not in argv
    )


def take_config_option(argv: list[str]) -> tuple[list[str], str | None]:
    """``argv`` without the ``--config`` option after ``create``, and its value (or None)."""
    head, rest = argv[: argv.index("create") + 1], argv[argv.index("create") + 1 :]
    kept: list[str] = []
    path = None
    skip_next = False
    for index, arg in enumerate(rest):
        if skip_next:
            skip_next = False
        elif arg == "--config" and index + 1 < len(rest):
            path, skip_next = rest[index + 1], True
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            kept.append(arg)
    return head + kept, path
