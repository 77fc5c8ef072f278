"""What the prediction log costs per record, in this process (no HTTP, no load generator).

    python -m benchmarks.prediction_log_cost

- ``record()``: the data-plane step a request pays (the hot path);
- the writer: JSON Lines serialisation, the segment and id file appends and flushes, and the
  check for waiting feedback (one SQLite transaction per drain), per record, measured by
  draining queued single-row requests on this thread (300 per drain: ~3,000 req/s).

CPU time figures, so a loaded machine changes them far less than it changes throughput.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

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


def main() -> None:
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
        for _ in range(N // 300):  # drains of 300 requests: ~3,000 req/s, one every 0.1 s
            for _ in range(300):
                log.record(model, uuid.uuid4().hex, rows, answer, 0.0004, batch=False)
            started = time.process_time()
            log._write_queued(writer, index)
            spent += time.process_time() - started
        write = spent / (N // 300 * 300) * 1e6
        writer.close()
        index.close()
    print(f"prediction log: record() {hot:.2f} us per request (hot path)")
    print(f"prediction log: writer {write:.2f} us per record (JSON, appends, flushes, join)")


if __name__ == "__main__":
    main()
