"""One ``POST /predict`` traced in a real service process: no module calls back into a module
that called it, the lean adapter calls only the data plane, and every request step has one
implementation, called once."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.artifact_factory import build_iris_artifact

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVE_SOURCES = REPO_ROOT / "src" / "serve"
API_KEY = "trace-api-key-0123456789"  # pragma: allowlist secret
SIGNING_KEY = ("trace-key-1", b"fake-trace-signing-secret-not-real")  # pragma: allowlist secret
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
LEAN_ADAPTER = "src.serve.lean_predict"
DATA_PLANE = "src.serve.dataplane"
# Each step of a prediction request: the one function that implements it.
REQUEST_STEPS = {
    "key read from the headers": "src.serve.auth:presented_key_from_headers",
    "key check and rate limit": "src.serve.auth:Authenticator.check",
    "model and readiness": "src.serve.dataplane:DataPlane.ready_model",
    "content type": "src.serve.dataplane:check_json_content_type",
    "body read": "src.serve.dataplane:read_body",
    "JSON parse": "src.serve.dataplane:parse_json_body",
    "schema parse": "src.serve.model_schemas:ModelSchemas.parse_record",
    "row announced": "src.serve.inference:InferenceService.row_arriving",
    "row arrived": "src.serve.inference:InferenceService.row_arrived",
    "inference": "src.serve.inference:InferenceService.infer",
    "finite-output check": "src.serve.dataplane:ensure_finite",
    "response body": "src.serve.dataplane:DataPlane.predict",
}


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the traced service, send it one authenticated POST /predict, return its report."""
    tmp = tmp_path_factory.mktemp("trace")
    artifacts = tmp / "artifacts"
    build_iris_artifact(artifacts, signing_key=SIGNING_KEY)
    (tmp / "serve.yaml").write_text("")
    out = tmp / "trace.json"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "SERVE_CONFIG": str(tmp / "serve.yaml"),
        "ARTIFACTS_DIR": str(artifacts),
        "API_KEYS": API_KEY,
        "ARTIFACT_SIGNING_KEYS": f"{SIGNING_KEY[0]}:{SIGNING_KEY[1].decode()}",
        "MODEL_POLL_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration_tests.request_trace_runner", str(out)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready "), f"runner did not start: {line!r} {proc.stderr.read()}"
        port = int(line.split()[1])
        response = httpx.post(
            f"http://127.0.0.1:{port}/predict",
            json=ROW,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=60,
        )
        assert proc.wait(120) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert response.status_code == 200, response.text
    assert response.json()["prediction"] == "setosa"
    return json.loads(out.read_text())


def test_no_two_modules_call_each_other(trace: dict[str, Any]) -> None:
    edges = {tuple(edge) for edge in trace["edges"]}
    assert (LEAN_ADAPTER, DATA_PLANE) in edges  # the trace saw the request
    both_ways = sorted(edge for edge in edges if edge[::-1] in edges and edge[0] < edge[1])
    assert both_ways == []


def test_the_lean_adapter_calls_only_the_data_plane(trace: dict[str, Any]) -> None:
    called = {callee for caller, callee in trace["edges"] if caller == LEAN_ADAPTER}
    assert called == {DATA_PLANE}


@pytest.mark.parametrize("step", REQUEST_STEPS)
def test_each_request_step_runs_once(trace: dict[str, Any], step: str) -> None:
    assert trace["calls"].get(REQUEST_STEPS[step]) == 1


def _defined_functions() -> list[tuple[str, str]]:
    """(module, qualified name) of every function and method defined in src/serve."""
    found = []
    for path in SERVE_SOURCES.rglob("*.py"):
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((module, node.name))
            elif isinstance(node, ast.ClassDef):
                found.extend(
                    (module, f"{node.name}.{item.name}")
                    for item in node.body
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                )
    return found


@pytest.mark.parametrize("step", REQUEST_STEPS)
def test_each_request_step_is_implemented_once(step: str) -> None:
    module, qualname = REQUEST_STEPS[step].split(":")
    defined_in = [where for where, function in _defined_functions() if function == qualname]
    assert defined_in == [module]
