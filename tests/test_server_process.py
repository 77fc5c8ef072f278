"""The server harness starts a process on its port, reports a failed start with the log tail,
and always stops what it started. Stand-in servers are small stdlib scripts."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import psutil
import pytest

from tests.polling import wait_for
from tests.server_process import ServerPool, ServerProcess, ServerStartError, serve_env

pytestmark = pytest.mark.integration

ANSWERS_200 = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["MARKER"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
server = http.server.HTTPServer((os.environ["FASTAPI_HOST"], int(os.environ["FASTAPI_PORT"])),
                                Handler)
print("listening", flush=True)
server.serve_forever()
"""
EXITS_3 = "print('cannot load the model', flush=True); raise SystemExit(3)"
IGNORES_SIGTERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print('stubborn', flush=True)
while True:
    time.sleep(1)
"""


def python(script: str) -> list[str]:
    return [sys.executable, "-c", script]


def test_serves_on_its_port_with_the_given_environment(tmp_path: Path) -> None:
    env = serve_env(tmp_path, tmp_path / "artifacts", MARKER="from-the-test")
    with ServerProcess(env, tmp_path / "server.log", command=python(ANSWERS_200)) as server:
        server.wait_ready()
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(server.url + "/anything").text == "from-the-test"
        assert psutil.pid_exists(server.pid)
    assert server.proc.poll() is not None
    assert "listening" in server.logs()


def test_a_server_that_exits_early_fails_with_its_code_and_log_tail(tmp_path: Path) -> None:
    server = ServerProcess({}, tmp_path / "server.log", command=python(EXITS_3))
    with server, pytest.raises(ServerStartError) as failure:
        server.wait_ready(timeout=60)
    message = str(failure.value)
    assert "exited with code 3" in message
    assert "cannot load the model" in message


def test_a_server_that_never_answers_fails_with_its_log_tail(tmp_path: Path) -> None:
    with ServerProcess({}, tmp_path / "server.log", command=python(IGNORES_SIGTERM)) as server:
        with pytest.raises(ServerStartError) as failure:
            server.wait_ready("/health", timeout=0)
        assert "200 on /health not met" in str(failure.value)
        assert "server log tail" in str(failure.value)
        # Only once it ignores SIGTERM does the grace period mean anything.
        wait_for(lambda: "stubborn" in server.logs(), timeout=30, what="SIGTERM ignored")
        server.stop(grace=0.5)
    assert server.proc.returncode == -9  # SIGTERM ignored: killed after the grace period


def test_a_pool_stops_every_server_it_started(tmp_path: Path) -> None:
    pool = ServerPool(tmp_path, command=python(ANSWERS_200), MARKER="pooled")
    with pool:
        first = pool(tmp_path / "artifacts")
        second = pool(tmp_path / "artifacts", MARKER="overridden")
        assert httpx.get(first.url).text == "pooled"
        assert httpx.get(second.url).text == "overridden"
    assert [server.proc.poll() is not None for server in pool.servers] == [True, True]
