"""`python -m benchmarks.bench --quick` runs end to end: floors and service, zero errors, a
well-formed report. No timing is asserted (shared CI machines are too noisy for that; the
targets are checked by reading the full run's report, docs/performance.md).

Needs wrk (Debian package ``wrk``): skipped when missing, unless ``REQUIRE_SYSTEM_TOOLS=1``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system_tools import system_tool

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.slow]
#: Two side-by-side slices, each on its own set of freshly started servers.
QUICK_SLICES = ("--slices", "2", "--sets", "2")


def _require_wrk() -> None:
    system_tool("wrk", package="wrk")


def test_quick_bench_runs_without_errors_and_writes_a_report(tmp_path: Path) -> None:
    _require_wrk()
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--quick", *QUICK_SLICES, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads((out / "bench-quick.json").read_text())
    assert report["mode"] == "quick"
    assert report["cpu_count"] >= 1
    assert {"scikit-learn", "onnxruntime", "uvicorn", "wrk"} <= report["versions"].keys()
    for model in ("iris", "forest"):
        costs = report["in_process"][model]
        assert costs["sklearn_us"] > 0
        assert costs["onnx_us"] > 0
    runs = report["runs"]
    servers = {(r["scenario"]["server"], r["scenario"]["backend"]) for r in runs}
    assert {("sklearn-floor", "-"), ("onnx-floor", "-"), ("service", "onnx")} <= servers
    assert any(r["scenario"]["batching"] for r in runs)
    assert any(r["scenario"]["endpoint"] == "/predict/batch" for r in runs)
    for run in runs:
        assert run["errors"] == 0, run
        assert run["requests"] > 0, run
        assert run["req_per_s"] > 0
        assert run["rows_per_s"] == pytest.approx(run["req_per_s"] * run["scenario"]["rows"])
        assert 0 < run["p50_ms"] <= run["p99_ms"]
    assert report["sets"] == 2
    for number in (1, 2):  # the side-by-side slices, one per set of freshly started servers
        sliced = [r for r in runs if r["round"] == number]
        assert {r["process_set"] for r in sliced} == {number}
        assert {(r["scenario"]["server"], r["scenario"]["prediction_log"]) for r in sliced} == {
            ("onnx-floor", False),
            ("service", False),
            ("service", True),
        }
    ratios = report["ratios"]
    assert len(ratios["iris c=8 service[onnx] / onnx floor"]["samples"]) == 2
    assert len(ratios["iris c=8 service[onnx, log] / service[onnx]"]["samples"]) == 2
    assert "iris c=8 service[onnx, log] / service[onnx]" in ratios
    for ratio in ratios.values():
        assert {"value", "target", "met"} <= ratio.keys()
    markdown = (out / "bench-quick.md").read_text()
    assert markdown.startswith("# Serving benchmark (quick")
    assert "| iris | service[onnx] | /predict |" in markdown
    assert "## Targets (same-run ratios)" in markdown
    assert "## Repeated and side-by-side runs" in markdown
