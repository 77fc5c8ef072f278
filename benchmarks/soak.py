"""Bounded soak: drive the real service at a fixed concurrency for a fixed time.

    python -m benchmarks.soak                      # 60 s at concurrency 16
    python -m benchmarks.soak --seconds 20 --concurrency 8

The service runs as `python -m src.serve.app` on 127.0.0.1 over a freshly built iris artifact,
with auth, artifact signature checking (the artifact is signed with a random key per run),
metrics and JSON logging on. wrk (closed loop) rotates single-row predictions, 10-row batches
and health checks. The run reports requests, errors, p50/p99 and the server's resident memory
after a warm-up and at the end, and passes only with zero errors, RSS growth under the limit
(default 10%), a clean exit 0 on SIGTERM and no signing secret in the service log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from benchmarks.bench import API_KEY, IRIS_ROW, ROOT, cpu_pin, free_port, wait_ready

SOAK_SCRIPT = ROOT / "benchmarks" / "wrk_soak.lua"


def rss_bytes(process: psutil.Process) -> int:
    """Resident memory of the server and its children (workers)."""
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total


@contextlib.contextmanager
def service(
    root: Path, log_path: Path, workers: int, signing_keys: str, exit_codes: list[int]
) -> Iterator[tuple[str, psutil.Process]]:
    """The real service on a free loopback port; stopped with SIGTERM (exit code recorded)."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FASTAPI_HOST": "127.0.0.1",
        "FASTAPI_PORT": str(port),
        "ARTIFACTS_DIR": str(root),
        "MODEL_NAME": "iris",
        "API_KEYS": API_KEY,
        "ARTIFACT_SIGNING_KEYS": signing_keys,
        "ALLOW_UNSIGNED": "false",
        "WORKERS": str(workers),
        "LOG_JSON": "true",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*cpu_pin(0), sys.executable, "-m", "src.serve.app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(process, base, base + "/health", log_path)
            yield base, psutil.Process(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                exit_codes.append(process.wait(timeout=20))
            except subprocess.TimeoutExpired:
                process.kill()
                exit_codes.append(process.wait())


def run_wrk(base: str, concurrency: int, seconds: int, work: Path) -> dict:
    (work / "single.json").write_text(json.dumps(IRIS_ROW))
    (work / "batch.json").write_text(json.dumps({"records": [IRIS_ROW] * 10}))
    env = {**os.environ, "SOAK_DIR": str(work), "BENCH_AUTH": API_KEY}
    cmd = [
        *cpu_pin(1), "wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{seconds}s",
        "--timeout", "10s", "-s", str(SOAK_SCRIPT), base,
    ]  # fmt: skip
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    return json.loads(line.removeprefix("WRK_JSON "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", 60)))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-rss-growth", type=float, default=0.10)
    parser.add_argument("--warmup", type=int, default=5, help="seconds before the first RSS")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from tests.artifact_factory import build_iris_artifact

    key_id, secret = "soak", secrets.token_urlsafe(32)
    exit_codes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        build_iris_artifact(
            work / "artifacts", model_name="iris", signing_key=(key_id, secret.encode())
        )
        log = work / "service.log"
        running = service(work / "artifacts", log, args.workers, f"{key_id}:{secret}", exit_codes)
        with running as (base, proc):
            run_wrk(base, args.concurrency, args.warmup, work)
            rss_start = rss_bytes(proc)
            started = time.monotonic()
            stats = run_wrk(base, args.concurrency, args.seconds, work)
            elapsed = time.monotonic() - started
            rss_end = rss_bytes(proc)
        secret_logged = secret in log.read_text(errors="replace")
    errors = sum(
        stats[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    growth = (rss_end - rss_start) / rss_start
    report = {
        "seconds": args.seconds,
        "elapsed_s": round(elapsed, 1),
        "concurrency": args.concurrency,
        "workers": args.workers,
        "requests": stats["requests"],
        "req_per_s": round(stats["requests"] / (stats["duration_us"] / 1e6), 1),
        "errors": errors,
        "p50_ms": stats["p50_us"] / 1000,
        "p99_ms": stats["p99_us"] / 1000,
        "rss_start_mib": round(rss_start / 2**20, 1),
        "rss_end_mib": round(rss_end / 2**20, 1),
        "rss_growth_pct": round(growth * 100, 2),
        "server_exit_code": exit_codes[0] if exit_codes else None,
        "secret_in_log": secret_logged,
        "passed": errors == 0
        and growth < args.max_rss_growth
        and exit_codes == [0]
        and not secret_logged,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
