"""Real ``python -m src.serve.app`` processes for the integration tests.

``ServerProcess`` starts one on a free 127.0.0.1 port with a given environment, captures its
output in a log file, waits until it answers (failing with the log tail) and always stops it:
SIGTERM, then SIGKILL for it and its process group after a grace period. ``ServerPool`` is the
fixture factory: it starts servers with a module's base environment and stops every one of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.polling import ConditionTimeoutError, wait_for

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVE_COMMAND = (sys.executable, "-m", "src.serve.app")
HOST = "127.0.0.1"
LOG_TAIL_CHARS = 4000


class ServerStartError(AssertionError):
    """The server exited, or did not answer its readiness probe, before the timeout."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def serve_env(home: Path, artifacts: Path, **overrides: str) -> dict[str, str]:
    """The service's environment: nothing inherited but PATH, an empty config file in ``home``,
    JSON logs, a 10 s shutdown grace, no local signing key; ``overrides`` win."""
    config = home / "serve.yaml"
    config.write_text("")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "SERVE_CONFIG": str(config),
        "ARTIFACTS_DIR": str(artifacts),
        "LOG_JSON": "true",
        "SHUTDOWN_GRACE_SECONDS": "10",
        # hermetic: servers run from the repository, whose secrets/ may hold a local key
        "ARTIFACT_SIGNING_LOCAL_FALLBACK": "false",
        **overrides,
    }


class ServerProcess:
    """One server subprocess bound to ``HOST`` on a free port (``FASTAPI_HOST``/``FASTAPI_PORT``
    are set here), in its own process group so that stopping it reaches its workers too."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        *,
        command: Sequence[str] = SERVE_COMMAND,
        cwd: Path = REPO_ROOT,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env={**env, "FASTAPI_HOST": HOST, "FASTAPI_PORT": str(self.port)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The server's process id (its process group id as well)."""
        return self.proc.pid

    def logs(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """The last ``chars`` characters of the log, introduced for a failure message."""
        return f"server log tail ({self.log_path}):\n{self.logs()[-chars:]}"

    def log_entries(self) -> list[dict[str, Any]]:
        """The log lines that are JSON objects, parsed."""
        entries = []
        for line in self.logs().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def wait_ready(self, path: str = "/health/live", timeout: float = 90.0) -> None:
        """Wait until ``GET path`` answers 200; raise ``ServerStartError`` with the log tail if
        the process exits first or the timeout passes."""

        def answers() -> bool:
            code = self.proc.poll()
            if code is not None:
                raise ServerStartError(
                    f"server {self.url} exited with code {code} before {path} answered 200\n"
                    + self.log_tail()
                )
            try:
                return httpx.get(self.url + path, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(answers, timeout, f"server {self.url}: 200 on {path}", detail=self.log_tail)
        except ConditionTimeoutError as exc:
            raise ServerStartError(str(exc)) from None

    def workers(self) -> list[psutil.Process]:
        """uvicorn's worker processes (multiprocessing spawn children, not its helpers)."""
        found = []
        for child in psutil.Process(self.proc.pid).children():
            try:
                cmdline = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "spawn_main" in cmdline or "multiprocessing.spawn" in cmdline:
                found.append(child)
        return found

    def terminate(self, timeout: float = 60.0) -> int:
        """Send SIGTERM and return the exit code (a test of graceful shutdown)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self, grace: float = 30.0) -> None:
        """Stop the server and every process of its group, even after a failed test."""
        graceful = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the parent stops and joins its workers
            try:
                graceful = self.proc.wait(grace) == 0
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if not graceful:  # crashed, killed or hung: workers may be left in its process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServerPool:
    """Starts service processes with one base environment; ``stop_all`` (or leaving the
    ``with`` block) stops every one it started. Use it as a pytest fixture factory::

        @pytest.fixture
        def start_server(tmp_path):
            with ServerPool(tmp_path, API_KEYS=KEY) as pool:
                yield pool

        server = start_server(artifacts, WORKERS="2")
    """

    def __init__(
        self,
        directory: Path,
        *,
        ready_path: str = "/health/live",
        command: Sequence[str] = SERVE_COMMAND,
        **base_env: str,
    ) -> None:
        self.directory = directory
        self.ready_path = ready_path
        self.command = command
        self.base_env = base_env
        self.servers: list[ServerProcess] = []

    def __call__(
        self, artifacts: Path, *, ready_path: str | None = None, **env: str
    ) -> ServerProcess:
        """Start a server on ``artifacts`` with the base environment plus ``env`` and wait
        until ``ready_path`` (the pool's by default) answers 200."""
        full_env = serve_env(self.directory, artifacts, **{**self.base_env, **env})
        log_path = self.directory / f"server-{len(self.servers)}.log"
        server = ServerProcess(full_env, log_path, command=self.command)
        self.servers.append(server)
        server.wait_ready(ready_path or self.ready_path)
        return server

    def stop_all(self) -> None:
        """Stop every server this pool started, each even if stopping another one failed."""
        with contextlib.ExitStack() as stops:
            for server in self.servers:
                stops.callback(server.stop)

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
