"""Nox sessions: what the pull-request checks and the README run.

`nox -s tests`, `nox -s lint`, `nox -s security` are the three pull-request checks.
`nox -s train`, `nox -s serve` and `nox -s demo` (train the default model, then serve it)
are for users.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "security", "tests"]

PYTHON = "3.11"
RUNTIME = ["-r", "requirements.txt"]
TOOLS = ["-r", "validation_requirements.txt"]


def _install_project(session: nox.Session, *extra: str) -> None:
    session.install(*RUNTIME, *extra)
    session.install("-e", ".", "--no-deps")


def _user_env() -> dict[str, str]:
    """Metaflow refuses to run without a user name (root in CI or a container has none)."""
    env = {}
    if not (os.environ.get("METAFLOW_USER") or os.environ.get("USERNAME")):
        env["METAFLOW_USER"] = os.environ.get("USER") or "mlops"
    return env


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit and integration tests with a coverage floor."""
    _install_project(session, *TOOLS)
    session.run(
        "pytest",
        "--cov",
        "--cov-report=term",
        "--cov-report=xml",
        *session.posargs,
        env=_user_env(),
    )


@nox.session(python=PYTHON)
def train(session: nox.Session) -> None:
    """Train the default model and publish it under artifacts/."""
    _install_project(session)
    config = session.posargs[0] if session.posargs else "src/training/config.yaml"
    session.run("python", "run_training_workflow.py", "run", "--config", config, env=_user_env())


@nox.session(python=PYTHON)
def serve(session: nox.Session) -> None:
    """Serve the latest published model (settings from src/serve/config.yaml + env)."""
    session.install("-r", "requirements-serve.txt")
    session.install("-e", ".", "--no-deps")
    session.run("python", "-m", "src.serve.app")
