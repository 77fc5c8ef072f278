"""The prediction log and feedback in real service processes (``python -m src.serve.app``).

Live metrics against figures computed by hand (feedback in order, before its prediction,
twice, for unknown ids) with two workers; no record lost across SIGTERM and a crash; both
workers' records all there and whole; the disk bound under a run that writes far past it.
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from src.serve.predlog.records import read_log, segment_files, segment_pid
from tests.artifact_factory import build_iris_artifact
from tests.polling import wait_for
from tests.server_process import ServerPool

pytestmark = pytest.mark.integration

API_KEY = "integration-api-key-0123"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
WAIT = 30.0
ROWS = [
    {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
    {"sepal_length": 5.9, "sepal_width": 2.8, "petal_length": 4.4, "petal_width": 1.3},
    {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("predlog-artifacts")
    build_iris_artifact(root)
    return root


@pytest.fixture
def start_server(tmp_path: Path):
    with ServerPool(
        tmp_path, API_KEYS=API_KEY, ALLOW_UNSIGNED="true", MODEL_POLL_SECONDS="0",
        PREDICTION_LOG_ENABLED="true", MONITORING_CACHE_SECONDS="0",
    ) as pool:  # fmt: skip
        yield pool


def predict(url: str, request_id: str, row: dict[str, float]) -> str:
    """One /predict on a fresh connection (so the kernel spreads them over the workers)."""
    response = httpx.post(
        url + "/predict", json={"request_id": request_id, **row}, headers=AUTH, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["prediction"]


def feedback(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(url + "/feedback", json=body, headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def series(url: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def logged(url: str) -> float:
    return sum(series(url, "serve_prediction_log_records_total").values())


def hand_metrics(pairs: list[tuple[str, str]]) -> dict[str, float]:
    """Accuracy and macro F1 of (predicted, true) pairs, written out."""
    accuracy = sum(p == t for p, t in pairs) / len(pairs)
    f1s = []
    for label in {p for p, _ in pairs} | {t for _, t in pairs}:
        tp = sum(p == label and t == label for p, t in pairs)
        fp = sum(p == label and t != label for p, t in pairs)
        fn = sum(p != label and t == label for p, t in pairs)
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"accuracy": accuracy, "f1_macro": sum(f1s) / len(f1s)}


def segments_bytes(log_dir: Path) -> int:
    total = 0
    for path in segment_files(log_dir):
        try:  # the service may delete a rotated segment between the listing and the stat
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


def assert_whole(log_dir: Path) -> list[dict[str, Any]]:
    """Every segment ends with a newline and every line is a complete record."""
    records = []
    for path in segment_files(log_dir):
        data = path.read_bytes()
        assert not data or data.endswith(b"\n"), path
        for line in data.splitlines():
            record = orjson.loads(line)
            assert set(record) >= {"request_id", "time", "model_name", "model_version"}
            records.append(record)
    return records


def test_live_metrics_match_the_hand_computation_with_two_workers(
    start_server, artifacts, tmp_path
):
    log_dir = tmp_path / "log"
    server = start_server(
        artifacts, ready_path="/health", WORKERS="2", PREDICTION_LOG_DIR=str(log_dir),
        LIVE_QUALITY_MIN_LABELLED="5",
    )  # fmt: skip
    url = server.url
    # Feedback before its prediction: kept, joined when the prediction is logged.
    early = feedback(url, {"items": [{"request_id": "early-0", "label": "versicolor"}]})
    assert early == {
        "received": 1, "matched": [], "unmatched": ["early-0"], "duplicates": [], "rejected": [],
    }  # fmt: skip
    predicted = {f"p{i}": predict(url, f"p{i}", ROWS[i % 3]) for i in range(9)}
    predicted["early-0"] = predict(url, "early-0", ROWS[0])
    batch = httpx.post(
        url + "/predict/batch", json={"request_id": "b", "records": ROWS}, headers=AUTH
    ).json()
    predicted.update({f"b/{i}": p["prediction"] for i, p in enumerate(batch["predictions"])})
    wait_for(lambda: logged(url) == 13, WAIT, "13 records logged")

    # In order: truths chosen so that some predictions are wrong.
    truths = {pid: p for pid, p in predicted.items() if pid != "early-0"}
    truths["p1"] = "virginica"
    truths["p2"] = "versicolor"
    truths["b/0"] = "versicolor"
    items = [{"request_id": pid, "label": label} for pid, label in truths.items()]
    items.append({"request_id": "p0", "label": "virginica"})  # twice in one request
    items.append({"request_id": "never-sent", "label": "setosa"})  # unknown id
    answer = feedback(url, {"items": items})
    assert answer["matched"] == list(truths)
    assert answer["duplicates"] == ["p0"]
    assert answer["unmatched"] == ["never-sent"]
    # Twice, later, with another label: the first one stays.
    again = feedback(url, {"request_id": "p3", "label": "virginica"})
    assert again["duplicates"] == ["p3"]
    assert again["matched"] == []
    # A value for a classifier is rejected (and does not count).
    feedback(url, {"request_id": "rejected-1", "value": 1.5})
    predict(url, "rejected-1", ROWS[1])

    truths["early-0"] = "versicolor"
    pairs = [(predicted[pid], truths[pid]) for pid in truths]
    expected = hand_metrics(pairs)
    assert 0 < expected["accuracy"] < 1  # the wrong labels count
    version = batch["model_version"]

    def live() -> dict[str, float]:
        return {
            dict(labels)["metric"]: value
            for labels, value in series(url, "model_live_metric").items()
            if dict(labels)["version"] == version
        }

    wait_for(
        lambda: series(url, "model_live_labelled_total").get(
            (("model", "iris_classifier"), ("version", version))
        ) == len(pairs),
        WAIT, f"{len(pairs)} labelled predictions",
    )  # fmt: skip
    # Either worker may answer a scrape; both must publish the hand-computed figures.
    for _ in range(6):
        figures = live()
        for name, value in expected.items():
            assert figures[name] == pytest.approx(value, abs=1e-6), (name, figures)
    # The same figures from either worker, next to the training-time ones.
    for _ in range(4):
        body = httpx.get(url + "/monitoring", headers={**AUTH, "Connection": "close"}).json()
        quality = body["live_quality"]
        assert quality["labelled_total"] == len(pairs)
        assert quality["live"]["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)
        assert quality["live"]["f1_macro"] == pytest.approx(expected["f1_macro"], abs=1e-6)
        assert set(quality["training"]) == {"accuracy", "f1_macro"}
        assert quality["status"] == "degraded"  # far below the training accuracy


def test_no_record_is_lost_across_sigterm_and_a_crash(start_server, artifacts, tmp_path):
    log_dir = tmp_path / "log"
    env = {"PREDICTION_LOG_DIR": str(log_dir)}
    first = start_server(artifacts, **env)
    with httpx.Client(base_url=first.url, headers=AUTH, timeout=10) as http:
        for i in range(60):
            assert (
                http.post("/predict", json={"request_id": f"a{i}", **ROWS[i % 3]}).status_code
                == 200
            )
    assert first.terminate() == 0  # SIGTERM right after the last answer
    ids = [r["request_id"] for r in assert_whole(log_dir)]
    assert sorted(ids) == sorted(f"a{i}" for i in range(60))
    assert not [p for p in segment_files(log_dir) if p.name.endswith(".open")]

    second = start_server(artifacts, **env)
    with httpx.Client(base_url=second.url, headers=AUTH, timeout=10) as http:
        for i in range(40):
            assert (
                http.post("/predict", json={"request_id": f"b{i}", **ROWS[i % 3]}).status_code
                == 200
            )
    wait_for(lambda: len(list(read_log(log_dir))) == 100, WAIT, "100 records flushed")
    os.killpg(second.pid, signal.SIGKILL)  # a crash: no shutdown at all
    second.proc.wait(10)

    third = start_server(artifacts, **env)
    answer = feedback(third.url, {"items": [{"request_id": "a0", "label": "setosa"},
                                            {"request_id": "b39", "label": "setosa"}]})  # fmt: skip
    assert answer["matched"] == ["a0", "b39"]  # the index survived both
    with httpx.Client(base_url=third.url, headers=AUTH, timeout=10) as http:
        assert http.post("/predict", json={"request_id": "c0", **ROWS[0]}).status_code == 200
    assert third.terminate() == 0
    ids = [r["request_id"] for r in assert_whole(log_dir)]
    expected = [f"a{i}" for i in range(60)] + [f"b{i}" for i in range(40)] + ["c0"]
    assert sorted(ids) == sorted(expected)


def test_two_workers_write_every_record_whole(start_server, artifacts, tmp_path):
    log_dir = tmp_path / "log"
    server = start_server(artifacts, WORKERS="2", PREDICTION_LOG_DIR=str(log_dir))
    ids = [f"w{i}" for i in range(300)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: predict(server.url, ids[i], ROWS[i % 3]), range(len(ids))))
    workers = {w.pid for w in server.workers()}
    assert server.terminate() == 0
    records = assert_whole(log_dir)
    assert sorted(r["request_id"] for r in records) == sorted(ids)
    writers = {segment_pid(p.name) for p in segment_files(log_dir)}
    assert len(writers) == 2  # both workers wrote, each its own files
    assert writers == workers


def test_the_disk_bound_holds_when_traffic_writes_far_past_it(start_server, artifacts, tmp_path):
    log_dir = tmp_path / "log"
    bound, segment = 32 * 1024, 4096
    server = start_server(
        artifacts, WORKERS="2", PREDICTION_LOG_DIR=str(log_dir),
        PREDICTION_LOG_SEGMENT_BYTES=str(segment), PREDICTION_LOG_MAX_BYTES=str(bound),
    )  # fmt: skip
    largest = 0
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as http:
        for n in range(60):  # 60 x 50 records of ~330 bytes: about 30 times the bound
            body = {"request_id": f"r{n}", "records": [ROWS[i % 3] for i in range(50)]}
            assert http.post("/predict/batch", json=body).status_code == 200
            largest = max(largest, segments_bytes(log_dir))
        wait_for(lambda: logged(server.url) == 3000, WAIT, "3000 records written")
        largest = max(largest, segments_bytes(log_dir))
    assert server.terminate() == 0
    assert largest <= bound
    assert segments_bytes(log_dir) <= bound
    ids = {r["request_id"] for r in assert_whole(log_dir)}
    assert "r59/49" in ids  # the newest are kept
    assert "r0/0" not in ids  # the oldest went first
    assert len(ids) * 300 > bound // 2  # and the bound is used, not emptied

    # Feedback for a prediction whose segment was deleted: unmatched (long after).
    again = start_server(artifacts, PREDICTION_LOG_DIR=str(log_dir),
                         PREDICTION_LOG_SEGMENT_BYTES=str(segment),
                         PREDICTION_LOG_MAX_BYTES=str(bound))  # fmt: skip
    items = [{"request_id": "r0/0", "label": "setosa"}, {"request_id": "r59/49", "label": "x"}]
    answer = feedback(again.url, {"items": items})
    assert answer["unmatched"] == ["r0/0"], answer
    assert answer["matched"] == ["r59/49"]
