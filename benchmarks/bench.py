"""Same-run serving benchmark: floors, our service per backend, batching off and on.

    python -m benchmarks.bench            # full run (~10 minutes on 2 cores)
    python -m benchmarks.bench --quick    # a small subset, 1 s per load run (< 1 minute)

Every figure is measured in this one run, and targets are ratios between runs, so a slow or
noisy machine shifts numerator and denominator alike. The two c=8 throughput ratios come from
servers loaded side by side in one-second slices (``--slices``, over ``--sets`` sets of freshly
started servers), the forest batching pair and the 1,000-row batch from repeated runs
(``--rounds``); those targets are medians. Servers are pinned to CPU 0 and the load generator
(wrk, closed loop) to CPU 1 when the machine has two or more CPUs. Results go to
``benchmarks/results/`` as JSON and a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
WRK_SCRIPT = ROOT / "benchmarks" / "wrk_report.lua"
API_KEY = "bench-key-not-a-secret"  # a throwaway key for a loopback-only benchmark
SIGNING_KEY_ID = "bench"
SIGNING_SECRET = "bench-signing-secret-not-a-secret"  # pragma: allowlist secret (throwaway)
IRIS_ROW = {"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 4.2, "petal_width": 1.5}
BATCH_MAX_WAIT_MS = 2


@dataclass
class Scenario:
    """One load run: which server, which model, which endpoint, how hard."""

    model: str
    server: str  # sklearn-floor | onnx-floor | service
    backend: str = "-"
    batching: bool = False
    endpoint: str = "/predict"
    rows: int = 1
    concurrency: int = 8
    extra_env: dict[str, str] = field(default_factory=dict)
    prediction_log: bool = False  # PREDICTION_LOG_ENABLED (docs/feedback.md)
    group: str = ""  # --only group=<group> selects exactly the scenarios compared together
    #: ``json`` (our own body), ``oip-json`` or ``oip-binary`` (an Open Inference Protocol
    #: request: one [rows, 4] tensor, as JSON or with the binary tensor data extension)
    body: str = "json"

    @property
    def label(self) -> str:
        if self.server != "service":
            return self.server
        options = (
            (", batching" if self.batching else "")
            + (", log" if self.prediction_log else "")
            + (f", {self.body}" if self.body != "json" else "")
        )
        return f"service[{self.backend}{options}]"

    @property
    def selector(self) -> str:
        """What ``--only`` is matched against (a substring of it selects the scenario)."""
        text = f"{self.model} {self.label} {self.endpoint} c={self.concurrency}"
        return f"{text} group={self.group}" if self.group else text


def selected(candidates: list[Scenario], only: str) -> list[Scenario]:
    """The scenarios whose selector contains one of the ``--only`` alternatives. They are
    separated by a comma with no space after it, so a label's own ", " stays whole."""
    wanted = re.split(r",(?! )", only)
    return [s for s in candidates if any(w in s.selector for w in wanted)]


@dataclass
class Result:
    scenario: Scenario
    req_per_s: float
    rows_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us_per_req: float = 0.0  # server CPU time (all threads) per request: noise-robust
    round: int = 0  # 0: the main pass; 1, 2, ...: the repeats of the paired runs
    process_set: int = 0  # side-by-side slices: which set of freshly started servers ran it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by every thread of process ``pid`` (0.0 when unavailable).

    Unlike req/s this hardly moves when other processes compete for the CPU, so it is the
    cross-check printed next to every run ("per-core" ratios).
    """
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as stat:
                total += int(stat.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return total / 1e9


def cpu_pin(cpu: int) -> list[str]:
    """`taskset` prefix pinning a process to one CPU, when possible."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


def build_artifacts(root: Path) -> None:
    """Publish the two benchmark models (iris LR pipeline, 200-tree forest) with ONNX, signed
    (the service verifies signatures, as in production).

    The forest takes raw features: a StandardScaler in front of trees converts to a float32
    scaler in ONNX that moves values across split thresholds, fails parity, and the service
    rightly refuses such a graph (tests/unit_tests/serve/backends/test_onnx.py).
    """
    from sklearn.ensemble import RandomForestClassifier

    sys.path.insert(0, str(ROOT))
    from tests.artifact_factory import build_iris_artifact

    key = (SIGNING_KEY_ID, SIGNING_SECRET.encode())
    build_iris_artifact(root, model_name="iris", with_onnx=True, signing_key=key)
    build_iris_artifact(
        root,
        model_name="forest",
        estimator=RandomForestClassifier(n_estimators=200, random_state=0, n_jobs=1),
        with_onnx=True,
        scale=False,
        signing_key=key,
    )


def version_dir(root: Path, model: str) -> Path:
    return root / model / (root / model / "LATEST").read_text().strip()


def in_process_costs(root: Path, quick: bool) -> dict[str, dict[str, float]]:
    """Microseconds per one-row call, in this process: scikit-learn and onnxruntime."""
    import warnings

    import joblib
    import onnxruntime as ort
    import sklearn

    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    row = np.asarray([list(IRIS_ROW.values())], dtype=np.float64)
    costs: dict[str, dict[str, float]] = {}
    for model in ("iris", "forest"):
        directory = version_dir(root, model)
        pipeline = joblib.load(directory / "model.joblib")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name
        row32 = row.astype(np.float32)

        def sk_call(pipeline: Any = pipeline) -> None:
            with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
                pipeline.predict_proba(row)

        def onnx_call(session: Any = session, feed: dict = {name: row32}) -> None:  # noqa: B006
            session.run(None, feed)

        n_sk = 20 if model == "forest" else 200
        n_onnx = 2000
        if quick:
            n_sk, n_onnx = max(5, n_sk // 10), 200
        costs[model] = {
            "sklearn_us": min(timeit.repeat(sk_call, number=n_sk, repeat=3)) / n_sk * 1e6,
            "onnx_us": min(timeit.repeat(onnx_call, number=n_onnx, repeat=3)) / n_onnx * 1e6,
        }
    return costs


@contextlib.contextmanager
def running_server(
    scenario: Scenario, root: Path, log_dir: Path
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the scenario's server on a free loopback port; stop it (SIGTERM) afterwards."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if scenario.server == "service":
        env.update(
            {
                "FASTAPI_HOST": "127.0.0.1",
                "FASTAPI_PORT": str(port),
                "ARTIFACTS_DIR": str(root),
                "MODEL_NAME": scenario.model,
                "API_KEYS": API_KEY,
                "ARTIFACT_SIGNING_KEYS": f"{SIGNING_KEY_ID}:{SIGNING_SECRET}",
                "WORKERS": "1",
                "LOG_JSON": "true",
                "MODEL_POLL_SECONDS": "0",
                "INFERENCE_BACKEND": scenario.backend,
                "BATCH_MAX_SIZE": "64" if scenario.batching else "1",
                "BATCH_MAX_WAIT_MS": str(BATCH_MAX_WAIT_MS),
                **scenario.extra_env,
            }
        )
        if scenario.prediction_log:
            env["PREDICTION_LOG_ENABLED"] = "true"
            env["PREDICTION_LOG_DIR"] = str(log_dir / f"prediction-log-{port}")
        cmd = [sys.executable, "-m", "src.serve.app"]
        ready_url = f"http://127.0.0.1:{port}/health"
    else:
        env.update(
            {
                "BENCH_MODEL_DIR": str(version_dir(root, scenario.model)),
                "BENCH_FLOOR": scenario.server.split("-")[0],
            }
        )
        # Same uvicorn settings the service uses: one worker, uvloop + httptools, no access log.
        cmd = [
            sys.executable, "-m", "uvicorn", "benchmarks.floor_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
            "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        ready_url = None
    log_path = log_dir / f"{scenario.model}-{scenario.label}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*cpu_pin(0), *cmd], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(process, base, ready_url, log_path)
            yield base, process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(process: subprocess.Popen, base: str, ready_url: str | None, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early ({process.returncode}); see {log}")
        try:
            if ready_url:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    return
            elif httpx.post(base + "/predict", json=IRIS_ROW, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after 60 s; see {log}")


def oip_request(scenario: Scenario) -> tuple[bytes, int | None]:
    """An OIP inference body of ``scenario.rows`` iris rows, and the JSON header's length
    when tensor data follows it in binary (tritonclient's default)."""
    rows = [list(IRIS_ROW.values())] * scenario.rows
    tensor: dict[str, Any] = {"name": "input", "shape": [scenario.rows, 4]}
    if scenario.body == "oip-json":
        return json.dumps({"inputs": [{**tensor, "datatype": "FP64", "data": rows}]}).encode(), None
    raw = np.asarray(rows, dtype="<f4").tobytes()
    tensor |= {"datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}
    header = json.dumps({"inputs": [tensor], "parameters": {"binary_data_output": True}}).encode()
    return header + raw, len(header)


def request_body(scenario: Scenario) -> bytes:
    if scenario.body.startswith("oip-"):
        return oip_request(scenario)[0]
    if scenario.endpoint == "/predict/batch":
        return json.dumps({"records": [IRIS_ROW] * scenario.rows}).encode()
    return json.dumps(IRIS_ROW).encode()


def run_wrk(
    url: str,
    body_file: Path,
    concurrency: int,
    seconds: float,
    auth: str,
    extra_env: dict[str, str] | None = None,
) -> dict:
    threads = max(1, min(2, concurrency))
    cmd = [
        *cpu_pin(1), "wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", str(WRK_SCRIPT), url,
    ]  # fmt: skip
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_AUTH": auth, **(extra_env or {})}
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    return json.loads(line.removeprefix("WRK_JSON "))


def _load(scenario: Scenario, work: Path) -> tuple[Path, str, dict[str, str]]:
    """The request body file, API key and extra wrk settings of ``scenario``."""
    body_file = work / f"body-{scenario.body}-{scenario.rows}.bin"
    body_file.write_bytes(request_body(scenario))
    auth = API_KEY if scenario.server == "service" else ""
    wrk_env = {}
    if scenario.body == "oip-binary":
        wrk_env = {
            "BENCH_CONTENT_TYPE": "application/octet-stream",
            "BENCH_HEADER_LENGTH": str(oip_request(scenario)[1]),
        }
    return body_file, auth, wrk_env


def _load_run(
    scenario: Scenario,
    base: str,
    process: subprocess.Popen,
    load: tuple[Path, str, dict[str, str]],
    seconds: float,
) -> Result:
    """One measured wrk run against a started (and warmed-up) server; ``load`` is
    :func:`_load`'s."""
    body_file, auth, wrk_env = load
    cpu_before = cpu_seconds(process.pid)
    stats = run_wrk(
        base + scenario.endpoint, body_file, scenario.concurrency, seconds, auth, wrk_env
    )
    cpu_used = cpu_seconds(process.pid) - cpu_before
    duration = stats["duration_us"] / 1e6
    errors = sum(stats[k] for k in ("connect_errors", "read_errors", "write_errors"))
    errors += stats["status_errors"] + stats["timeouts"]
    req_per_s = stats["requests"] / duration
    return Result(
        scenario=scenario,
        req_per_s=req_per_s,
        rows_per_s=req_per_s * scenario.rows,
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        errors=errors,
        requests=stats["requests"],
        cpu_us_per_req=cpu_used / max(1, stats["requests"]) * 1e6,
    )


def _warm_up(
    scenario: Scenario, base: str, load: tuple[Path, str, dict[str, str]], seconds: float
) -> None:
    body_file, auth, wrk_env = load
    run_wrk(base + scenario.endpoint, body_file, scenario.concurrency, seconds, auth, wrk_env)


def measure(scenario: Scenario, root: Path, work: Path, seconds: float) -> Result:
    """Start ``scenario``'s server, warm it up, load it for ``seconds``, stop it."""
    load = _load(scenario, work)
    with running_server(scenario, root, work) as (base, process):
        _warm_up(scenario, base, load, max(1.0, seconds / 3))
        return _load_run(scenario, base, process, load, seconds)


def slices_per_set(slices: int, sets: int) -> list[int]:
    """How many of ``slices`` each of ``sets`` fresh server sets runs (as even as possible,
    earlier sets first; never an empty set)."""
    sets = max(1, min(sets, slices))
    return [slices // sets + (1 if i < slices % sets else 0) for i in range(sets)]


def measure_interleaved(
    group: list[Scenario], root: Path, work: Path, slices: int, sets: int = 1
) -> list[Result]:
    """Every server of ``group`` started at once (all pinned to the same CPU, one loaded at a
    time), then loaded in rounds of one-second runs, in the group's order on odd rounds and
    reversed on even ones. The ``slices`` rounds are spread over ``sets`` sets of freshly
    started servers: one process's speed differs from another's of the same code by several
    percent for its whole life (memory layout, hash seed), so one set of processes alone
    would decide a ratio by that draw. Each result's ``round`` is its slice (1, 2, ...,
    numbered across sets) and ``process_set`` its set (1, 2, ...)."""
    results: list[Result] = []
    number = 0
    for process_set, count in enumerate(slices_per_set(slices, sets), start=1):
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(running_server(s, root, work)) for s in group]
            loads = [_load(s, work) for s in group]
            order = list(zip(group, servers, loads, strict=True))
            for scenario, (base, _), load in order:
                _warm_up(scenario, base, load, 1.0)
            for _ in range(count):
                number += 1
                for scenario, (base, process), load in order if number % 2 else order[::-1]:
                    result = _load_run(scenario, base, process, load, 1.0)
                    result.round = number
                    result.process_set = process_set
                    results.append(result)
    return results


#: The prediction log's overhead: the same ONNX c=8 run with the log off, then on.
PREDICTION_LOG_PAIR = [
    Scenario("iris", "service", backend="onnx", group="prediction-log"),
    Scenario("iris", "service", backend="onnx", prediction_log=True, group="prediction-log"),
]


def scenarios(quick: bool) -> list[Scenario]:
    if quick:
        return [
            Scenario("iris", "sklearn-floor"),
            Scenario("iris", "onnx-floor"),
            *PREDICTION_LOG_PAIR,
            Scenario("forest", "service", backend="sklearn", batching=True),
            Scenario("iris", "service", backend="onnx", endpoint="/predict/batch", rows=100),
        ]
    runs: list[Scenario] = []
    for model in ("iris", "forest"):
        for concurrency in (1, 8, 64):
            runs += [
                Scenario(model, "sklearn-floor", concurrency=concurrency),
                Scenario(model, "onnx-floor", concurrency=concurrency),
            ]
            runs += [
                Scenario(model, "service", backend, batching, concurrency=concurrency)
                for backend in ("onnx", "sklearn")
                for batching in (False, True)
            ]
    base = runs.index(Scenario("iris", "service", "onnx", False, concurrency=8))
    runs[base : base + 1] = PREDICTION_LOG_PAIR  # the log-on run right after its baseline
    runs += [
        Scenario("iris", "service", backend, endpoint="/predict/batch", rows=rows)
        for backend in ("onnx", "sklearn")
        for rows in (1, 100, 1000)
    ]
    # The Open Inference Protocol next to /predict (same model, backend and concurrency).
    runs += [
        Scenario("iris", "service", backend, endpoint="/v2/models/iris/infer", body=body)
        for backend in ("onnx", "sklearn")
        for body in ("oip-json", "oip-binary")
    ]
    return runs


#: The runs behind the targets that need repeating but cannot be cut into short slices (a
#: p99 at one connection, a rows/s figure): with ``--rounds N`` they run N times, the forest
#: pair back to back, and each target is the median over the rounds.
PAIRED_RUNS: list[dict[str, Any]] = [
    {"model": "forest", "server": "service", "backend": "sklearn", "endpoint": "/predict",
     "concurrency": 1},  # batching off and on
    {"model": "iris", "server": "service", "backend": "onnx", "endpoint": "/predict/batch",
     "rows": 1000},
]  # fmt: skip

#: The servers behind the two throughput ratios at c=8 (service / ONNX floor, log on / off):
#: with ``--slices N`` all three run at once and are loaded in N rounds of one-second runs
#: (``measure_interleaved``, spread over ``--sets`` sets of freshly started servers); each
#: ratio is the median over the rounds. A shared machine's speed drifts from one minute to
#: the next, so runs minutes apart compare badly; slices side by side see the same drift
#: (docs/performance.md, "Running the benchmark").
INTERLEAVED_RUNS: list[dict[str, Any]] = [
    {"model": "iris", "server": "onnx-floor", "concurrency": 8},
    {"model": "iris", "server": "service", "backend": "onnx", "batching": False,
     "endpoint": "/predict", "concurrency": 8, "body": "json"},  # log off and on
]  # fmt: skip


def matches(scenario: Scenario, want: dict[str, Any]) -> bool:
    return all(getattr(scenario, k) == v for k, v in want.items())


def repeated(chosen: list[Scenario], round_number: int) -> list[Scenario]:
    """The repeated runs among ``chosen`` for one round, in the main pass's order on even
    rounds and reversed on odd ones (pairs stay adjacent; neither side always goes first)."""
    runs = [s for s in chosen if any(matches(s, want) for want in PAIRED_RUNS)]
    return runs[::-1] if round_number % 2 else runs


def interleaved(chosen: list[Scenario]) -> list[Scenario]:
    """The servers among ``chosen`` measured side by side in slices."""
    return [s for s in chosen if any(matches(s, want) for want in INTERLEAVED_RUNS)]


def find(results: list[Result], **want: Any) -> Result | None:
    """The main pass's run matching ``want``."""
    for result in results:
        if result.round == 0 and matches(result.scenario, want):
            return result
    return None


def find_rounds(results: list[Result], **want: Any) -> dict[int, Result]:
    """Every round's run matching ``want``, by round."""
    found: dict[int, Result] = {}
    for result in results:
        if matches(result.scenario, want):
            found.setdefault(result.round, result)
    return found


def ratios(results: list[Result]) -> dict[str, dict[str, Any]]:
    """The issue's targets as same-run ratios; a target whose runs are missing is skipped."""

    def ratio(name: str, num: dict[str, Any], den: dict[str, Any], target: float) -> None:
        nums, dens = find_rounds(results, **num), find_rounds(results, **den)
        rounds = sorted(nums.keys() & dens.keys())
        # Only the c=8 pairs have runs beyond the main pass (their side-by-side slices); the
        # main pass's runs of those minutes apart stay out of the median.
        rounds = [r for r in rounds if r > 0] or rounds
        pairs = [(nums[r], dens[r]) for r in rounds]
        pairs = [(n, d) for n, d in pairs if d.req_per_s > 0]
        if not pairs:
            return
        values = [n.req_per_s / d.req_per_s for n, d in pairs]
        value = statistics.median(values)
        out[name] = {"value": round(value, 2), "target": target, "met": value >= target}
        if len(values) > 1:
            out[name]["samples"] = [round(v, 2) for v in values]
        if all(n.cpu_us_per_req > 0 and d.cpu_us_per_req > 0 for n, d in pairs):
            # Throughput per core (requests per server CPU-second), same ratio: a
            # cross-check that other processes on the machine cannot skew.
            per_core = [d.cpu_us_per_req / n.cpu_us_per_req for n, d in pairs]
            out[name]["per_core"] = round(statistics.median(per_core), 2)

    out: dict[str, dict[str, Any]] = {}
    iris_onnx = {"model": "iris", "server": "service", "backend": "onnx", "batching": False,
                 "endpoint": "/predict", "concurrency": 8, "prediction_log": False}  # fmt: skip
    ratio("iris c=8 service[onnx, log] / service[onnx]",
          {**iris_onnx, "prediction_log": True}, iris_onnx, 0.95)  # fmt: skip
    ratio("iris c=8 service[onnx] / onnx floor", iris_onnx,
          {"model": "iris", "server": "onnx-floor", "concurrency": 8}, 0.7)  # fmt: skip
    ratio("iris c=8 service[onnx] / sklearn floor", iris_onnx,
          {"model": "iris", "server": "sklearn-floor", "concurrency": 8}, 1.2)  # fmt: skip
    ratio("forest c=8 service[onnx] / sklearn floor",
          {"model": "forest", "server": "service", "backend": "onnx", "batching": False,
           "endpoint": "/predict", "concurrency": 8},
          {"model": "forest", "server": "sklearn-floor", "concurrency": 8}, 15)  # fmt: skip
    ratio("forest c=64 service[sklearn, batching] / service[sklearn]",
          {"model": "forest", "server": "service", "backend": "sklearn", "batching": True,
           "endpoint": "/predict", "concurrency": 64},
          {"model": "forest", "server": "service", "backend": "sklearn", "batching": False,
           "endpoint": "/predict", "concurrency": 64}, 12)  # fmt: skip
    forest_c1 = {"model": "forest", "server": "service", "backend": "sklearn",
                 "endpoint": "/predict", "concurrency": 1}  # fmt: skip
    batched_c1 = find_rounds(results, **forest_c1, batching=True)
    plain_c1 = find_rounds(results, **forest_c1, batching=False)
    rises = [
        batched_c1[r].p99_ms - plain_c1[r].p99_ms
        for r in sorted(batched_c1.keys() & plain_c1.keys())
    ]
    if rises:
        rise = statistics.median(rises)
        bound = BATCH_MAX_WAIT_MS + 2
        out["forest c=1 p99 rise with batching (ms)"] = {
            "value": round(rise, 2), "target": f"<= {bound}", "met": rise <= bound,
        }  # fmt: skip
        if len(rises) > 1:
            out["forest c=1 p99 rise with batching (ms)"]["samples"] = [round(v, 2) for v in rises]
    tail_ratios(results, out)
    bigs = list(find_rounds(results, model="iris", server="service", backend="onnx",
                            endpoint="/predict/batch", rows=1000).values())  # fmt: skip
    if bigs:
        rows_per_s = statistics.median(b.rows_per_s for b in bigs)
        name = "iris /predict/batch 1000 rows: rows/s"
        out[name] = {
            "value": round(rows_per_s),
            "target": ">= 200000",
            "met": rows_per_s >= 200_000,
        }
        if len(bigs) > 1:
            out[name]["samples"] = [round(b.rows_per_s) for b in bigs]
        if all(b.cpu_us_per_req > 0 for b in bigs):
            out[name]["per_core"] = round(
                statistics.median(b.scenario.rows / b.cpu_us_per_req * 1e6 for b in bigs)
            )
    return out


#: Fair at saturation: no request waits much longer than the typical one (p99 / p50).
TAIL_P99_OVER_P50 = 3.0
#: The inline ONNX path's tail next to the bare ONNX floor's, same load (p99 / p99).
TAIL_P99_OVER_FLOOR = 3.0
TAIL_CONCURRENCY = 64


def tail_ratios(results: list[Result], out: dict[str, dict[str, Any]]) -> None:
    """The tail at saturation: p99 / p50 of the service on each backend at c=64, and the ONNX
    backend's p99 over the bare ONNX floor's (lower is better; "<= target")."""

    def at_most(name: str, value: float, target: float) -> None:
        out[name] = {"value": round(value, 2), "target": f"<= {target:g}", "met": value <= target}

    for backend in ("onnx", "sklearn"):
        for batching in (False, True):
            run = find(results, model="iris", server="service", backend=backend,
                       batching=batching, endpoint="/predict", concurrency=TAIL_CONCURRENCY,
                       prediction_log=False)  # fmt: skip
            if run and run.p50_ms > 0:
                at_most(f"iris c=64 {run.scenario.label} p99 / p50", run.p99_ms / run.p50_ms,
                        TAIL_P99_OVER_P50)  # fmt: skip
    onnx = find(results, model="iris", server="service", backend="onnx", batching=False,
                endpoint="/predict", concurrency=TAIL_CONCURRENCY)  # fmt: skip
    floor = find(results, model="iris", server="onnx-floor", concurrency=TAIL_CONCURRENCY)
    if onnx and floor and floor.p99_ms > 0:
        at_most("iris c=64 service[onnx] p99 / onnx floor p99", onnx.p99_ms / floor.p99_ms,
                TAIL_P99_OVER_FLOOR)  # fmt: skip


def tail_table(report: dict[str, Any]) -> list[str]:
    """Markdown rows: every /predict run at c=64 (floors and service), p50, p99 and their ratio."""
    lines = [
        "",
        f"## The tail at saturation (c={TAIL_CONCURRENCY})",
        "",
        "| model | server | req/s | p50 ms | p99 ms | p99 / p50 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in report["runs"]:
        s = row["scenario"]
        if (
            row.get("round", 0)
            or s["concurrency"] != TAIL_CONCURRENCY
            or s["endpoint"] != "/predict"
        ):
            continue
        ratio = row["p99_ms"] / row["p50_ms"] if row["p50_ms"] > 0 else float("nan")
        lines.append(
            f"| {s['model']} | {Scenario(**s).label} | {row['req_per_s']:.0f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {ratio:.1f} |"
        )
    return lines if len(lines) > 5 else []


def library_versions() -> dict[str, str]:
    names = [
        "scikit-learn", "onnxruntime", "skl2onnx", "numpy", "fastapi", "starlette",
        "uvicorn", "uvloop", "httptools", "orjson", "pydantic", "prometheus-client",
    ]  # fmt: skip
    versions = {"python": platform.python_version()}
    for name in names:
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            versions[name] = importlib_metadata.version(name)
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    versions["wrk"] = (wrk.stdout or wrk.stderr).split("[")[0].strip()
    return versions


def _run_row(row: dict[str, Any]) -> str:
    s = row["scenario"]
    return (
        f"| {s['model']} | {Scenario(**s).label} | {s['endpoint']} | {s['rows']} | "
        f"{s['concurrency']} | {row['req_per_s']:.0f} | {row['rows_per_s']:.0f} | "
        f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['errors']} | "
        f"{row.get('cpu_us_per_req', 0):.0f} |"
    )


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Serving benchmark ({report['mode']}, {report['created_at']})",
        "",
        f"CPUs: {report['cpu_count']}; server pinned to CPU 0, wrk to CPU 1 when possible. "
        f"Load run: {report['seconds']} s after a warm-up.",
        "",
        "## In-process one-row cost (us)",
        "",
        "| model | scikit-learn | onnxruntime |",
        "|---|---:|---:|",
    ]
    for model, cost in report["in_process"].items():
        lines.append(f"| {model} | {cost['sklearn_us']:.1f} | {cost['onnx_us']:.1f} |")
    lines += [
        "",
        "## Load runs",
        "",
        "| model | server | endpoint | rows | c | req/s | rows/s | p50 ms | p99 ms | errors "
        "| server CPU us/req |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    main_pass = [row for row in report["runs"] if row.get("round", 0) == 0]
    repeats = [row for row in report["runs"] if row.get("round", 0) > 0]
    lines += [_run_row(row) for row in main_pass]
    if repeats:
        lines += [
            "",
            "## Repeated and side-by-side runs",
            "",
            "After the main pass (round 0): the forest pair at c=1 and the 1,000-row batch "
            f"again ({report.get('rounds', 1)} rounds in all), and the c=8 ONNX floor and "
            f"service (log off and on) in {report.get('slices', 0)} one-second slices with all "
            f"three servers up, over {report.get('sets', 1)} set(s) of freshly started "
            "servers (the round column is the slice, and its set).",
            "",
            "| round | model | server | endpoint | rows | c | req/s | rows/s | p50 ms | p99 ms "
            "| errors | server CPU us/req |",
            "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [f"| {_round_label(row)} {_run_row(row)}" for row in repeats]
    lines += tail_table(report)
    lines += ["", "## Targets (same-run ratios)", "",
              "Per core: the same ratio in requests (rows) per server CPU-second. Where a "
              "target's runs were repeated or sliced, value and per core are medians, and "
              "every sample is listed.", "",
              "| target | value | goal | met | per core | samples |",
              "|---|---:|---|---|---:|---|"]  # fmt: skip
    for name, r in report["ratios"].items():
        met, per_core = "yes" if r["met"] else "NO", r.get("per_core", "-")
        samples = ", ".join(str(v) for v in r.get("samples", [])) or "-"
        lines.append(f"| {name} | {r['value']} | {r['target']} | {met} | {per_core} | {samples} |")
    lines += ["", "## Versions", ""]
    lines += [f"- {k}: {v}" for k, v in report["versions"].items()]
    return "\n".join(lines) + "\n"


def _round_label(row: dict[str, Any]) -> str:
    """A repeat's round, and the set of servers it ran on when it is a side-by-side slice."""
    process_set = row.get("process_set", 0)
    return f"{row['round']} (set {process_set})" if process_set else str(row["round"])


def _print_run(r: Result) -> None:
    s = r.scenario
    where = f"r{r.round}" + (f"/s{r.process_set}" if r.process_set else "")
    print(
        f"{where} {s.model:7} {s.label:30} {s.endpoint:15} rows={s.rows:<5}"
        f" c={s.concurrency:<3} {r.req_per_s:9.0f} req/s {r.rows_per_s:10.0f} rows/s"
        f" p50={r.p50_ms:7.2f}ms p99={r.p99_ms:7.2f}ms errors={r.errors}"
        f" cpu={r.cpu_us_per_req:6.0f}us/req",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small subset, 1 s load runs")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per load run")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory")
    parser.add_argument(
        "--slices",
        type=int,
        default=None,
        help="one-second side-by-side runs behind the two c=8 throughput ratios "
        "(default 12; quick 2; 0: use the main pass's runs)",
    )
    parser.add_argument(
        "--sets",
        type=int,
        default=None,
        help="sets of freshly started servers the slices are spread over (default 4; quick 1)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="times the paired runs behind the ratio targets are measured (default 3; quick 1)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="run only scenarios whose 'model label endpoint c=N' contains this (or, "
        "separated by commas not followed by a space, any of these: labels such as "
        "'service[onnx, log]' keep their own comma)",
    )
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("bench: wrk not found; install it (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    seconds = args.seconds or (1.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 3)
    slices = (2 if args.quick else 12) if args.slices is None else args.slices
    sets = (1 if args.quick else 4) if args.sets is None else args.sets
    if rounds < 1 or slices < 0 or sets < 1:
        parser.error("--rounds and --sets must be at least 1 and --slices at least 0")
    mode = "quick" if args.quick else "full"
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        root = work / "artifacts"
        build_artifacts(root)
        in_process = in_process_costs(root, args.quick)
        results = []
        chosen = selected(scenarios(args.quick), args.only)
        plan = [(0, s) for s in chosen]
        plan += [(n, s) for n in range(1, rounds) for s in repeated(chosen, n)]
        for round_number, scenario in plan:
            result = measure(scenario, root, work, seconds)
            result.round = round_number
            results.append(result)
            _print_run(result)
        group = interleaved(chosen)
        if slices and len(group) >= 2:
            for result in measure_interleaved(group, root, work, slices, sets):
                results.append(result)
                _print_run(result)
    report = {
        "mode": mode,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "seconds": seconds,
        "rounds": rounds,
        "slices": slices,
        "sets": len(slices_per_set(slices, sets)) if slices else 0,
        "in_process": in_process,
        "runs": [asdict(r) for r in results],
        "ratios": ratios(results),
        "versions": library_versions(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"bench-{mode}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"bench-{mode}.md").write_text(markdown(report))
    print(markdown(report))
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
