"""Run the training workflow.

    python run_training_workflow.py run --config src/training/config.yaml

Any Metaflow command works (``show``, ``resume``, ``card view <run_id>/evaluate``, ...). For
``run``, the config is validated first so a bad config exits non-zero with one line naming the
field, before Metaflow starts; and the closing lines say where the model was published.
``argo-workflows create --config <path>`` validates the config the same way and deploys it
(``src.training.deployed_config``).
"""

from __future__ import annotations

import os
import sys
import tempfile

from src.training.runtime import (
    SUMMARY_ENV,
    enable_bytecode_cache,
    ensure_metaflow_user,
    read_summary,
)

# Metaflow refuses to start without a user name (root in CI/containers): set one first.
ensure_metaflow_user()

from src.training.config import DEFAULT_CONFIG_PATH  # noqa: E402
from src.training.config_loader import load_config  # noqa: E402
from src.training.deployed_config import (  # noqa: E402
    DEPLOY_CONFIG_ENV,
    DEPLOY_PUBLISH_LOCAL_ENV,
    is_deploy_command,
    take_config_option,
)
from src.training.errors import ConfigError  # noqa: E402
from src.training.signing import resolve_signing_key  # noqa: E402

CONFIG_ERROR_EXIT = 2


def config_argument(argv: list[str]) -> str | None:
    """The ``--config`` value of a ``run`` command line, or None when absent."""
    for index, arg in enumerate(argv):
        if arg == "--config" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def is_run_command(argv: list[str]) -> bool:
    """True for a user's ``... run ...`` (not task subprocesses, cards, resume, ``--help``)."""
    inside_a_run = SUMMARY_ENV in os.environ  # set by the entry point for its step processes
    return "run" in argv and "--help" not in argv and not inside_a_run


def preflight(argv: list[str]) -> int:
    """Validate the config and signing key of a ``run``; 0 when fine, else the exit code."""
    run_args = argv[argv.index("run") + 1 :]
    path = config_argument(run_args) or DEFAULT_CONFIG_PATH
    try:
        load_config(path)
        message = resolve_signing_key().message
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return CONFIG_ERROR_EXIT
    if message:
        print(message)
    return 0


def run_flow() -> int:
    """Run the Metaflow CLI and return its exit code."""
    from src.training.training_workflow import TrainingWorkflow

    try:
        TrainingWorkflow()
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def deploy(argv: list[str]) -> int:
    """``create`` for a scheduler: validate the config and deployment settings, then compile.

    ``--config`` is taken off the command line (``create`` has no parameter options) and
    becomes the deployed default of the flow's ``config`` parameter; ``publish_local``
    defaults to false in the deployment.
    """
    from src.training.retraining import schedule_options, trigger_options

    argv, path = take_config_option(argv)
    path = path or os.environ.get(DEPLOY_CONFIG_ENV) or DEFAULT_CONFIG_PATH
    try:
        load_config(path)
        schedule_options(os.environ)
        trigger_options(os.environ)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return CONFIG_ERROR_EXIT
    os.environ[DEPLOY_CONFIG_ENV] = path
    os.environ.setdefault(DEPLOY_PUBLISH_LOCAL_ENV, "false")  # pods have no lasting disk
    sys.argv = [sys.argv[0], *argv]
    return run_flow()


def main(argv: list[str]) -> int:
    """Entry point: preflight checks for ``run``, then Metaflow, then the closing lines."""
    if is_deploy_command(argv):
        return deploy(argv)
    if not is_run_command(argv):
        return run_flow()
    enable_bytecode_cache()
    code = preflight(argv)
    if code:
        return code
    fd, summary_path = tempfile.mkstemp(prefix="training-summary-", suffix=".txt")
    os.close(fd)
    os.environ[SUMMARY_ENV] = summary_path
    try:
        code = run_flow()
        ok_lines, failed_lines = read_summary(summary_path)
    finally:
        os.unlink(summary_path)
    if code == 0:
        for line in ok_lines:
            print(line, flush=True)
    else:
        reason = failed_lines[-1] if failed_lines else "see the step output above"
        print(f"training failed: {reason}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
