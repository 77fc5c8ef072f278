"""What the prediction log costs: per record in this process, and per request when served.

    python -m benchmarks.prediction_log_cost                      # in this process
    python -m benchmarks.prediction_log_cost --served --runs 5    # two services side by side

In this process (no HTTP, no load generator):

- ``record()``: the data-plane step a request pays (the hot path);
- the writer: JSON Lines serialisation, the segment and id file appends and flushes, and the
  check for waiting feedback (one SQLite transaction per drain), per record, measured by
  draining queued single-row requests on this thread (``--per-drain``, default 150 per
  0.05 s drain: ~3,000 req/s).

``--served``: the benchmark's ``prediction-log`` pair (iris, ONNX, ``/predict``, c=8), but
the log-off and the log-on service run *at the same time*, both pinned to CPU 0, each loaded
by its own wrk on CPU 1. Both then meet the same interference from whatever else runs on the
machine, which a sequential off-then-on run does not: on a shared machine the server CPU
time per request of back-to-back runs can differ by 50%, the same configuration's
throughput by a factor of three. The figure is the ratio of server CPU microseconds per
request (all threads; the log-on service's writer thread is shown apart), off / on: the
share of throughput the log leaves when the core is the limit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from src.serve.artifact import resolve
from src.serve.backends.base import Prediction
from src.serve.loaded_model import build_loaded_model
from src.serve.predlog.index import FeedbackIndex
from src.serve.predlog.segments import SegmentWriter
from src.serve.predlog.service import PredictionLog, PredictionLogConfig
from src.serve.settings import load_settings
from tests.artifact_factory import build_iris_artifact

N = 20_000
ROW = (5.9, 3.0, 4.2, 1.5)


def in_process(per_drain: int) -> None:
    """Print microseconds per record for the hot path and for the writer."""
    with tempfile.TemporaryDirectory(prefix="predlog-cost-") as tmp:
        root = Path(tmp)
        build_iris_artifact(root / "artifacts")
        settings = load_settings(artifacts_dir=root / "artifacts", auth_disabled=True,
                                 allow_unsigned=True, model_poll_seconds=0)  # fmt: skip
        model = build_loaded_model(resolve(root / "artifacts", "iris_classifier"), settings)
        config = PredictionLogConfig(
            directory=root / "log", sample_rate=1.0, keep_features=True,
            segment_bytes=16 << 20, segment_seconds=3600, max_bytes=1 << 30, queue_size=N,
            pending_seconds=3600, window=1000, min_labelled=100, margin=0.05,
        )  # fmt: skip
        log = PredictionLog(config, None)  # not started: this thread drains the queue itself
        answer = [Prediction("versicolor", {"setosa": 0.01, "versicolor": 0.9, "virginica": 0.09})]
        rows = [ROW]
        started = time.process_time()
        for i in range(N):
            log.record(model, f"req-{i}", rows, answer, 0.0004, batch=False)
        hot = (time.process_time() - started) / N * 1e6
        index = FeedbackIndex(config.directory)
        writer = SegmentWriter(config.directory, segment_bytes=config.segment_bytes,
                               segment_seconds=config.segment_seconds,
                               max_bytes=config.max_bytes)  # fmt: skip
        log._queue.clear()
        spent = 0.0
        for _ in range(N // per_drain):  # one drain every 0.05 s: 150 = ~3,000 req/s
            for _ in range(per_drain):
                log.record(model, uuid.uuid4().hex, rows, answer, 0.0004, batch=False)
            started = time.process_time()
            log._write_queued(writer, index)
            spent += time.process_time() - started
        write = spent / (N // per_drain * per_drain) * 1e6
        writer.close()
        index.close()
    print(f"prediction log: record() {hot:.2f} us per request (hot path)")
    print(
        f"prediction log: writer {write:.2f} us per record (JSON, appends, flushes, join; "
        f"{per_drain} per drain)"
    )


def thread_cpu_ns(pid: int) -> dict[str, int]:
    """CPU time so far of each thread of process ``pid``, by thread id."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/schedstat") as stat:
            out[tid] = int(stat.read().split()[0])
    return out


def served(seconds: float, runs: int) -> None:
    """Log off and log on served side by side; print CPU us/request of each, per run."""
    from benchmarks import bench

    with tempfile.TemporaryDirectory(prefix="predlog-served-") as tmp:
        work = Path(tmp)
        root = work / "artifacts"
        bench.build_artifacts(root)
        pair = bench.PREDICTION_LOG_PAIR
        body = work / "body.json"
        body.write_bytes(bench.request_body(pair[0]))
        ratios = []
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(bench.running_server(s, root, work)) for s in pair]
            for base, _ in servers:  # warm-up
                bench.run_wrk(base + "/predict", body, 8, 3, bench.API_KEY)
            for run in range(1, runs + 1):
                stats: list[Any] = [None, None]

                def load(k: int, stats: list[Any] = stats) -> None:
                    url = servers[k][0] + "/predict"
                    stats[k] = bench.run_wrk(url, body, 8, seconds, bench.API_KEY)

                pids = [process.pid for _, process in servers]
                before = [thread_cpu_ns(pid) for pid in pids]
                loaders = [threading.Thread(target=load, args=(k,)) for k in (0, 1)]
                for loader in loaders:
                    loader.start()
                for loader in loaders:
                    loader.join()
                after = [thread_cpu_ns(pid) for pid in pids]
                requests = [stats[k]["requests"] for k in (0, 1)]
                spent = [{t: after[k][t] - before[k].get(t, 0) for t in after[k]} for k in (0, 1)]
                us = [sum(spent[k].values()) / 1e3 / requests[k] for k in (0, 1)]
                main_thread = spent[1].get(str(pids[1]), 0) / 1e3 / requests[1]
                rates = [requests[k] / (stats[k]["duration_us"] / 1e6) for k in (0, 1)]
                ratios.append(us[0] / us[1])
                print(
                    f"run {run}: off {rates[0]:.0f} req/s {us[0]:.1f} us/req | on "
                    f"{rates[1]:.0f} req/s {us[1]:.1f} us/req (event loop {main_thread:.1f}, "
                    f"other threads {us[1] - main_thread:.1f}) | off/on per core "
                    f"{ratios[-1]:.3f} | load average {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        print(f"median off/on per core over {runs} runs: {statistics.median(ratios):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--served", action="store_true", help="two services side by side")
    parser.add_argument("--seconds", type=float, default=8.0, help="per --served run")
    parser.add_argument("--runs", type=int, default=5, help="--served runs")
    parser.add_argument("--per-drain", type=int, default=150, help="in-process drain size")
    args = parser.parse_args()
    if args.served:
        served(args.seconds, args.runs)
    else:
        in_process(args.per_drain)


if __name__ == "__main__":
    main()
